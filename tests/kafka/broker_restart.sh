#!/usr/bin/env bash
# The broker stops and comes back: scripts/kafka-broker start on a stopped DIR restarts it on
# the same address with the same data, so a topic and its messages survive, and producing
# after the restart appends to them. Holds the kafka_broker lock (ctest), as it takes the
# shared broker away for a few seconds.
set -euo pipefail
: "${VIGIL_KAFKA_DIR:?run through ctest -L kafka, or set VIGIL_KAFKA_DIR}"
: "${VIGIL_KAFKA_TOOL:?set VIGIL_KAFKA_TOOL to the vigil_kafka_tool binary}"
broker=${VIGIL_KAFKA_BROKER:-$(dirname "$0")/../../scripts/kafka-broker}
tool=$VIGIL_KAFKA_TOOL
dir=$VIGIL_KAFKA_DIR
work=$(mktemp -d)
# Whatever happens, leave the shared broker running for the tests after this one.
trap '"$broker" start --dir "$dir" >/dev/null || true; rm -rf "$work"' EXIT

bootstrap=$(<"$dir/bootstrap")
topic=restart-$(date +%s%N)
seq 1 500 | sed 's/.*/{"n":&}/' >"$work/first.jsonl"
seq 501 1000 | sed 's/.*/{"n":&}/' >"$work/second.jsonl"

"$tool" create-topic --bootstrap "$bootstrap" --topic "$topic" --partitions 2 --compact
"$tool" produce --bootstrap "$bootstrap" --topic "$topic" --input "$work/first.jsonl" --key-field n

"$broker" stop --dir "$dir"
if "$broker" status --dir "$dir" >/dev/null; then
  echo "broker still running after stop" >&2
  exit 1
fi
again=$("$broker" start --dir "$dir")
[[ $again == "$bootstrap" ]] || { echo "restarted at $again, was at $bootstrap" >&2; exit 1; }

# The topic is still there with its partition count (create-topic checks it), and its data.
"$tool" create-topic --bootstrap "$bootstrap" --topic "$topic" --partitions 2 --compact
"$tool" produce --bootstrap "$bootstrap" --topic "$topic" --input "$work/second.jsonl" --key-field n
"$tool" consume --bootstrap "$bootstrap" --topic "$topic" --expect 1000 --timeout 60 \
  --read-committed --out "$work/out.jsonl"
diff <(cat "$work/first.jsonl" "$work/second.jsonl" | sort) <(sort "$work/out.jsonl")
echo "ok: $topic kept its 500 messages across a restart at $bootstrap"
