#!/usr/bin/env bash
# The three-broker variant of scripts/kafka-broker: a cluster of three combined nodes in its
# own DIR (not the shared broker), a topic replicated three times, one node stopped while the
# others take writes, the node brought back, nothing lost. The cluster is removed at the end.
set -euo pipefail
: "${VIGIL_KAFKA_TOOL:?set VIGIL_KAFKA_TOOL to the vigil_kafka_tool binary}"
broker=${VIGIL_KAFKA_BROKER:-$(dirname "$0")/../../scripts/kafka-broker}
tool=$VIGIL_KAFKA_TOOL
dir=${VIGIL_KAFKA_CLUSTER_DIR:?set VIGIL_KAFKA_CLUSTER_DIR to a directory for the cluster}
work=$(mktemp -d)
trap '"$broker" stop --dir "$dir" || true; rm -rf "$work"' EXIT

bootstrap=$("$broker" start --fresh --brokers 3 --dir "$dir")
[[ $bootstrap == *,*,* ]] || { echo "expected three addresses, got $bootstrap" >&2; exit 1; }
topic=three-$(date +%s%N)
seq 1 1000 | sed 's/.*/{"n":&}/' >"$work/first.jsonl"
seq 1001 2000 | sed 's/.*/{"n":&}/' >"$work/second.jsonl"

"$tool" create-topic --bootstrap "$bootstrap" --topic "$topic" --partitions 3 --replication 3
"$tool" produce --bootstrap "$bootstrap" --topic "$topic" --input "$work/first.jsonl" \
  --key-field n --transactional-id "$topic" >/dev/null

# With one node down the other two still form a quorum and an in-sync majority (min ISR 2).
"$broker" stop --dir "$dir" --node 2
status=$("$broker" status --dir "$dir") && { echo "status says all running: $status" >&2; exit 1; }
"$tool" produce --bootstrap "$bootstrap" --topic "$topic" --input "$work/second.jsonl" \
  --key-field n --transactional-id "$topic" >/dev/null
"$broker" start --dir "$dir" >/dev/null
"$broker" status --dir "$dir"

"$tool" consume --bootstrap "$bootstrap" --topic "$topic" --expect 2000 --timeout 60 \
  --read-committed --out "$work/out.jsonl"
diff <(cat "$work/first.jsonl" "$work/second.jsonl" | sort) <(sort "$work/out.jsonl")
echo "ok: 2000 messages through $topic (replication 3) with node 2 stopped half-way"
