#!/usr/bin/env python3
"""Runs one feature case file through the real vigil binary.

A case file (tests/features/*.test):

    # name: what it shows
    # description: free text (any number of '#' lines)
    <YAML: entities, features, and optionally lateness/dedup>
    ----
    <events, one JSON object per line; fields: id, ts, card, merchant, device, amount,
     channel, country, lat, lon; id, ts and card are required>
    ----
    <expected, one line per decided event, in order: EVENT_ID name=value ...>

Only the features a line names are compared (numbers to 1e-6 relative, or 'null'). Every
decided event needs a line, and every line an event. The case runs with 1 and 2 workers:
the features must not depend on which worker owns which entity.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

INPUT = """name: feature-case
input:
  fields:
    - {name: id, type: string}
    - {name: ts, type: timestamp}
    - {name: card, type: string}
    - {name: merchant, type: string, required: false}
    - {name: device, type: string, required: false}
    - {name: amount, type: float, required: false}
    - {name: channel, type: string, required: false}
    - {name: country, type: string, required: false}
    - {name: lat, type: lat, required: false}
    - {name: lon, type: lon, required: false}
event: {id: id, time: ts, key: card}
"""


def parse(path):
    with open(path) as f:
        text = f.read()
    parts = text.split("\n----\n")
    if len(parts) != 3:
        sys.exit(f"{path}: expected three sections separated by '----' lines")
    yaml_part, events, expected = parts
    yaml_lines = [l for l in yaml_part.splitlines() if not l.startswith("#")]
    want = []
    for n, line in enumerate(expected.splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        event_id, *pairs = line.split()
        want.append((event_id, dict(p.split("=", 1) for p in pairs)))
    return "\n".join(yaml_lines), events.strip() + "\n", want


def close(got, want):
    if want == "null":
        return got is None
    if got is None:
        return False
    w = float(want)
    return math.isclose(got, w, rel_tol=1e-6, abs_tol=1e-9)


def run(vigil, pipeline, events, workers):
    r = subprocess.run([vigil, "run", "-c", pipeline, "--input", events, "--decisions", "-",
                        "--no-event", "--emit-features", "--workers", str(workers), "--quiet"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"vigil exited {r.returncode}: {r.stderr.decode()}")
    return [json.loads(l) for l in r.stdout.decode().splitlines()]


def main():
    vigil, case = sys.argv[1], sys.argv[2]
    # The pipeline and events files are written from the case, so nothing is kept after.
    with tempfile.TemporaryDirectory(prefix="vigil-feature-") as tmp:
        return check(vigil, case, tmp)


def check(vigil, case, tmp):
    spec, events, want = parse(case)
    pipeline = os.path.join(tmp, "pipeline.yaml")
    with open(pipeline, "w") as f:
        f.write(INPUT + spec + "\n")
    ev = os.path.join(tmp, "events.jsonl")
    with open(ev, "w") as f:
        f.write(events)
    failures = []
    outputs = {}
    for workers in (1, 2):
        got = run(vigil, pipeline, ev, workers)
        outputs[workers] = got
        if len(got) != len(want):
            failures.append(f"workers={workers}: {len(got)} decided events, {len(want)} expected lines")
            continue
        for d, (event_id, feats) in zip(got, want):
            if d["event_id"] != event_id:
                failures.append(f"workers={workers}: event {d['event_id']}, expected {event_id}")
                continue
            for name, value in feats.items():
                if name not in d["features"]:
                    failures.append(f"{event_id}: no feature {name}")
                elif not close(d["features"][name], value):
                    failures.append(f"workers={workers} {event_id}: {name}={d['features'][name]}, "
                                    f"expected {value}")
    if not failures and outputs[1] != outputs[2]:
        failures.append("features differ between 1 and 2 workers")
    name = os.path.basename(case)
    if failures:
        print(f"FAIL {name}\n  " + "\n  ".join(failures))
        return 1
    print(f"ok {name} ({len(want)} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
