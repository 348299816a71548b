#!/usr/bin/env bash
# Smoke test of the test broker: a 4-partition topic, 10,000 JSON lines keyed by card in,
# then 100 more in a transaction that is aborted; the same 10,000 lines out with
# read_committed (compared as sorted sets: order holds only within a partition). The aborted
# transaction also shows that transactions initialise on a single broker.
# Needs VIGIL_KAFKA_DIR (a running scripts/kafka-broker DIR) and VIGIL_KAFKA_TOOL; ctest
# sets both (tests/kafka/CMakeLists.txt).
set -euo pipefail
: "${VIGIL_KAFKA_DIR:?run through ctest -L kafka, or set VIGIL_KAFKA_DIR}"
: "${VIGIL_KAFKA_TOOL:?set VIGIL_KAFKA_TOOL to the vigil_kafka_tool binary}"
bootstrap=$(<"$VIGIL_KAFKA_DIR/bootstrap")
tool=$VIGIL_KAFKA_TOOL
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A fresh topic name per run, so a rerun against a broker that kept its data still starts empty.
topic=smoke-$(date +%s%N)
n=10000
awk -v n=$n 'BEGIN { for (i = 1; i <= n; i++)
  printf "{\"tx_id\":\"t%05d\",\"card\":\"c%03d\",\"amount\":%d.25}\n", i, i % 211, i }' \
  >"$work/in.jsonl"

"$tool" create-topic --bootstrap "$bootstrap" --topic "$topic" --partitions 4
delivered=$("$tool" produce --bootstrap "$bootstrap" --topic "$topic" --input "$work/in.jsonl" \
  --key-field card)
[[ $delivered == "$n" ]] || { echo "produce reported $delivered delivered, not $n" >&2; exit 1; }
"$tool" produce --bootstrap "$bootstrap" --topic "$topic" --input "$work/in.jsonl" --count 100 \
  --key-field card --transactional-id "$topic-aborted" --abort >/dev/null
"$tool" consume --bootstrap "$bootstrap" --topic "$topic" --expect $n --timeout 60 \
  --read-committed --out "$work/out.jsonl"
if ! diff <(sort "$work/in.jsonl") <(sort "$work/out.jsonl") >"$work/diff"; then
  echo "consumed lines differ from the produced ones:" >&2
  head -20 "$work/diff" >&2
  exit 1
fi
echo "ok: $n messages through $topic (4 partitions) at $bootstrap"
