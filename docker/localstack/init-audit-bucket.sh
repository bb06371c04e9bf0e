#!/usr/bin/env bash
# LocalStack READY-stage init hook (mounted into /etc/localstack/init/ready.d/ by
# docker-compose.yml): creates the bucket the audit trail's head is anchored in
# (AUDIT_ANCHOR=s3://login-ingest-audit-anchors/trail), with Object Lock, as production needs
# (the worker refuses a bucket without it at start). LocalStack Community keeps nothing
# between container starts, so neither do these anchors: local development only.
set -euo pipefail

BUCKET="${AUDIT_ANCHOR_BUCKET:-login-ingest-audit-anchors}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export LOCALSTACK_HOST=127.0.0.1:4566
export DISABLE_DEPRECATION_NOTICE=1

if ! awslocal s3api head-bucket --bucket "${BUCKET}" 2>/dev/null; then
  awslocal s3api create-bucket --bucket "${BUCKET}" --object-lock-enabled-for-bucket >/dev/null
fi
awslocal s3api put-object-lock-configuration --bucket "${BUCKET}" \
  --object-lock-configuration '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":1}}}'
echo "[init-audit-bucket] bucket ready: ${BUCKET} (Object Lock, COMPLIANCE)"
