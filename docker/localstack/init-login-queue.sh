#!/usr/bin/env bash
# LocalStack READY-stage init hook (mounted into /etc/localstack/init/ready.d/ by
# docker-compose.yml). It runs inside the LocalStack container once SQS is ready:
#
#   1. creates the standard queue `login-queue` (create-queue is idempotent: with the
#      same name and attributes it simply returns the existing queue URL), then
#   2. sends every element of the JSON array in /data/sample.json (./data on the host)
#      as one SQS message, the element serialised compactly (like `jq -c '.[]'`).
#
# NOT idempotent for messages: every run sends the whole sample again.
#  - LocalStack (Community, no persistence) starts empty on every container start, so
#    each start/restart of the `localstack` container re-seeds the same 100 records
#    once - including records the worker already ingested before the restart.
#  - Running the hook by hand against a live container (`docker compose exec localstack
#    /etc/localstack/init/ready.d/init-login-queue.sh`) adds another full copy.
# Downstream must tolerate duplicates anyway (SQS is at-least-once). Set
# LOGIN_QUEUE_SEED=false on the service to only create the queue.
#
# The image has no jq, so python3 (always present in the LocalStack image) builds the
# batches. The file must stay executable (git mode 100755) and use LF line endings:
# LocalStack executes .sh hooks directly and marks the hook as failed otherwise.
set -euo pipefail

QUEUE_NAME="${LOGIN_QUEUE_NAME:-login-queue}"
SAMPLE_FILE="${LOGIN_QUEUE_SAMPLE_FILE:-/data/sample.json}"
SEED="${LOGIN_QUEUE_SEED:-true}"

# Dummy credentials/region for LocalStack.
# The region must match the worker's AWS_REGION (queue URLs are per region).
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
# LOCALSTACK_HOST on the service (localstack:4566) only shapes the queue URLs LocalStack
# returns; from inside the container, talk to the gateway on loopback.
export LOCALSTACK_HOST=127.0.0.1:4566
export DISABLE_DEPRECATION_NOTICE=1

log() { echo "[init-login-queue] $*"; }

queue_url="$(awslocal sqs create-queue --queue-name "${QUEUE_NAME}" --query QueueUrl --output text)"
log "queue ready: ${queue_url}"

case "${SEED}" in
  false | 0 | no)
    log "LOGIN_QUEUE_SEED=${SEED}: not sending the sample"
    exit 0
    ;;
esac

if [[ ! -f "${SAMPLE_FILE}" ]]; then
  log "WARNING: ${SAMPLE_FILE} not found (is ./data mounted?); the queue stays empty"
  exit 0
fi

workdir="$(mktemp -d)"
trap 'rm -rf "${workdir}"' EXIT

# Split the array into SendMessageBatch request files of at most 10 entries (the SQS
# per-batch limit). A file that is not a JSON array fails the hook loudly.
total="$(python3 - "${SAMPLE_FILE}" "${workdir}" <<'PY'
import json
import os
import sys

src, out = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    items = json.load(f)
if not isinstance(items, list):
    sys.exit(f"{src}: expected a JSON array, got {type(items).__name__}")

for start in range(0, len(items), 10):
    entries = [
        {
            "Id": f"m{start + i}",
            "MessageBody": json.dumps(item, separators=(",", ":"), ensure_ascii=False),
        }
        for i, item in enumerate(items[start:start + 10])
    ]
    with open(os.path.join(out, f"batch-{start // 10:06d}.json"), "w", encoding="utf-8") as f:
        json.dump(entries, f, ensure_ascii=False)

print(len(items))
PY
)"

if [[ "${total}" == "0" ]]; then
  log "${SAMPLE_FILE} is an empty array; nothing to send"
  exit 0
fi

sent=0
for batch in "${workdir}"/batch-*.json; do
  n="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1], encoding="utf-8"))))' "${batch}")"
  # The backticks are a JMESPath literal (empty list when Failed is absent), not bash.
  # shellcheck disable=SC2016
  failed="$(awslocal sqs send-message-batch \
    --queue-url "${queue_url}" \
    --entries "file://${batch}" \
    --query 'length(Failed || `[]`)' \
    --output text)"
  if [[ "${failed}" != "0" ]]; then
    log "ERROR: ${failed} of ${n} entries in $(basename "${batch}") were rejected"
    exit 1
  fi
  sent=$((sent + n))
done

log "sent ${sent}/${total} messages from ${SAMPLE_FILE} to ${queue_url}"
