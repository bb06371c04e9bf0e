#!/bin/sh
# After the server is up: the namespace and the ingest's search attributes (counts per run
# in the Web UI's list; lib/run-attributes.ts), each created only when missing. Runs in
# temporalio/admin-tools (docker-compose.yml: temporal-setup). The worker also registers
# missing search attributes at start when it may; this makes compose not depend on that.
set -eu
NAMESPACE="${DEFAULT_NAMESPACE:-default}"
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"

i=0
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 60 ] || { echo "Temporal at $ADDRESS did not become healthy"; exit 1; }
  sleep 2
done
temporal operator namespace describe -n "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$NAMESPACE" --retention 7d --address "$ADDRESS"

existing=$(temporal operator search-attribute list -n "$NAMESPACE" --address "$ADDRESS")
for pair in IngestReceived=Int IngestPersisted=Int IngestQuarantined=Int IngestStopReason=Keyword; do
  name=${pair%%=*}; type=${pair#*=}
  echo "$existing" | grep -qw "$name" \
    || temporal operator search-attribute create -n "$NAMESPACE" --name "$name" --type "$type" --address "$ADDRESS"
done
echo "Namespace $NAMESPACE and search attributes ready."
