#!/usr/bin/env python3
"""End-to-end scenarios that need more than one command: crash and resume, stdin, signals.

Usage: scenarios.py VIGIL SCENARIO. Each scenario asserts exact outputs and reconciled
counters, and stops by itself within its time bound.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PIPELINE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "card-fraud.yaml")
PIPELINE_CSV = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "card-fraud.csv.yaml")


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def run(vigil, *args, **kw):
    return subprocess.run([vigil, *args], capture_output=True, timeout=kw.pop("timeout", 200), **kw)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def summary(path):
    with open(path) as f:
        return json.load(f)


def counters(s):
    return {k: s[k] for k in ("read", "decided", "dead_lettered", "duplicate", "late", "alerts")}


def make_input(vigil, tmp, events, fmt="jsonl"):
    """Generated traffic plus a sprinkling of bad, duplicated and late records."""
    clean = os.path.join(tmp, f"clean.{fmt}")
    r = run(vigil, "generate", "--events", str(events), "--seed", "7", "--out", clean)
    check(r.returncode == 0, f"generate failed: {r.stderr.decode()}")
    lines = read(clean).split(b"\n")
    out = []
    for i, line in enumerate(lines):
        if not line:
            continue
        out.append(line)
        if fmt == "jsonl" and i > 0 and i % 997 == 0:
            out.append(b'{"event_id": broken')              # parse error
            out.append(line)                                # duplicate
            out.append(line.replace(b'"amount":', b'"amount":-'))  # below min, dup id anyway
    path = os.path.join(tmp, f"input.{fmt}")
    with open(path, "wb") as f:
        f.write(b"\n".join(out) + b"\n")
    return path


def manifest_path(out):
    """The newest checkpoint's manifest of a run with --out OUT."""
    return os.path.join(out, "checkpoint", "latest.json")


def wait_for_progress(state_path, proc, min_read, timeout=60):
    """Waits until a checkpoint covers at least min_read records; returns that count."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        check(proc.poll() is None, "the run finished before it could be interrupted; "
              "raise the event count")
        try:
            with open(state_path) as f:
                st = json.load(f)
            if st["read"] >= min_read and not st["completed"]:
                return st["read"]
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise Failure("no checkpoint appeared in time")


def clean_run(vigil, tmp, inp, pipeline=PIPELINE):
    out = os.path.join(tmp, "clean-out")
    r = run(vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet",
            "--emit-features")
    check(r.returncode == 0, f"clean run failed: {r.stderr.decode()}")
    return out


def stored_alerts(out):
    """The alert store's rows (decision lines), sorted; none when the run kept no store."""
    import sqlite3
    path = os.path.join(out, "alerts.db")
    if not os.path.exists(path):
        return []
    db = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in db.execute("SELECT decision FROM alerts"))
    finally:
        db.close()


def compare_outputs(a, b):
    for name in ("decisions.jsonl", "dead_letters.jsonl", "late.jsonl"):
        x, y = read(os.path.join(a, name)), read(os.path.join(b, name))
        check(x == y, f"{name} differs after resume: {len(x)} vs {len(y)} bytes")
    alerts_a, alerts_b = stored_alerts(a), stored_alerts(b)
    check(alerts_a == alerts_b,
          f"alert stores differ after resume: {len(alerts_a)} vs {len(alerts_b)} alerts")
    sa, sb = summary(os.path.join(a, "summary.json")), summary(os.path.join(b, "summary.json"))
    check(counters(sa) == counters(sb), f"counters differ: {counters(sa)} vs {counters(sb)}")
    check(sb["reconciled"] and sb["completed"], f"resumed summary: {sb}")


def event_time_span(path):
    """Seconds of event time between the first and last record of a generated file."""
    from datetime import datetime
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.startswith(("{\"event_id\"", "tx-"))]
    def ts(line):
        text = json.loads(line)["ts"] if line.startswith("{") else line.split(",")[1]
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return ts(lines[-1]) - ts(lines[0])


def interrupted_then_resumed(vigil, tmp, inp, sig, pipeline=PIPELINE, first_args=(),
                             resume_args=()):
    ref = clean_run(vigil, tmp, inp, pipeline)
    out = os.path.join(tmp, "crash-out")
    # Paced so the whole input takes ~6 s: the interruption lands mid-file.
    speed = f"{event_time_span(inp) / 6:.0f}x"
    # --emit-features: the resumed run must also restore every entity's state exactly.
    cmd = [vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet",
           "--emit-features", "--checkpoint-interval", "200ms"]
    proc = subprocess.Popen(cmd + list(first_args) + ["--speed", speed],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        done = wait_for_progress(manifest_path(out), proc, 1000)
        time.sleep(0.5)  # and a little past the checkpoint, so the cut is mid-batch
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    last = summary(manifest_path(out))
    check(not last["completed"] and last["read"] >= done, f"checkpoint after the stop: {last}")
    if sig == signal.SIGINT:
        check(proc.returncode == 130, f"interrupted run exited {proc.returncode}")
        # Ctrl-C takes a last checkpoint at shutdown: it covers everything written.
        size = os.path.getsize(os.path.join(out, "decisions.jsonl"))
        check(last["decisions_bytes"] == size,
              f"the shutdown checkpoint covers {last['decisions_bytes']} of {size} bytes")
    r = subprocess.run(cmd + list(resume_args), capture_output=True, timeout=200)  # full speed
    check(r.returncode == 0, f"resumed run failed: {r.stderr.decode()}")
    err = r.stderr.decode()
    check(f"from checkpoint {last['seq']}: {last['read']} records already read" in err,
          f"the second run did not resume from the last checkpoint: {err}")
    compare_outputs(ref, out)
    return done


def scenario_killed_twice(vigil, tmp):
    """A resumed run is killed again; the third run still ends equal to a clean run."""
    inp = make_input(vigil, tmp, 60000)
    ref = clean_run(vigil, tmp, inp)
    out = os.path.join(tmp, "crash-out")
    speed = f"{event_time_span(inp) / 6:.0f}x"
    cmd = [vigil, "run", "-c", PIPELINE, "--input", inp, "--out", out, "--quiet",
           "--emit-features", "--checkpoint-interval", "200ms"]
    state = manifest_path(out)
    proc = subprocess.Popen(cmd + ["--speed", speed], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_progress(state, proc, 10000)
    proc.kill()
    proc.wait()
    first = summary(state)
    proc = subprocess.Popen(cmd + ["--speed", speed], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_progress(state, proc, first["read"] + 5000)
    proc.kill()
    proc.wait()
    second = summary(state)
    check(second["seq"] > first["seq"] and second["decisions_lines"] > first["decisions_lines"],
          f"the second run did not carry on from the first's checkpoint: {first} then {second}")
    r = subprocess.run(cmd, capture_output=True, timeout=200)
    check(r.returncode == 0, r.stderr.decode())
    compare_outputs(ref, out)


def scenario_resume_other_workers(vigil, tmp):
    """State saved by 2 workers is restored into 1 (each worker keeps the entities it owns)."""
    inp = make_input(vigil, tmp, 60000)
    interrupted_then_resumed(vigil, tmp, inp, signal.SIGKILL, first_args=["--workers", "2"],
                             resume_args=["--workers", "1"])


def scenario_refuses_changed_pipeline(vigil, tmp):
    """A checkpoint is tied to its pipeline: an edited pipeline is refused, with the fix."""
    inp = make_input(vigil, tmp, 30000)
    pipeline = os.path.join(tmp, "p.yaml")
    shutil.copy(PIPELINE, pipeline)
    out = os.path.join(tmp, "out")
    r = run(vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet",
            "--events", "10000")
    check(r.returncode == 0, r.stderr.decode())
    latest = summary(manifest_path(out))
    check(latest["completed"] and latest["read"] == 10000, f"{latest}")
    with open(pipeline) as f:
        text = f.read()
    # A comment or a worker count does not touch the state; a feature's window does.
    edited = text.replace("window: 10m, step: 1m}", "window: 20m, step: 1m}", 1)
    check(edited != text, "the example pipeline's card_txn_10m changed")
    with open(pipeline, "w") as f:
        f.write(edited)
    r = run(vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet")
    check(r.returncode == 2 and b"completed run" in r.stderr, r.stderr.decode())
    # An interrupted checkpoint of the old pipeline: the edit is named.
    latest["completed"] = False
    with open(manifest_path(out), "w") as f:
        json.dump(latest, f)
    r = run(vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet")
    check(r.returncode == 2 and b"features sections changed" in r.stderr
          and b"--overwrite" in r.stderr, r.stderr.decode())
    # A damaged state file is refused, not half-read.
    ckpt = os.path.join(out, "checkpoint", latest["checkpoint"], "shard-0.bin")
    data = bytearray(read(ckpt))
    data[len(data) // 2] ^= 0xFF
    with open(ckpt, "wb") as f:
        f.write(data)
    shutil.copy(PIPELINE, pipeline)
    r = run(vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet")
    check(r.returncode != 0 and b"checksum mismatch" in r.stderr, r.stderr.decode())


def scenario_out_of_order_features(vigil, tmp):
    """Shuffled within the allowed lateness, the same events get the same features."""
    import random
    clean = os.path.join(tmp, "sorted.jsonl")
    r = run(vigil, "generate", "--events", "20000", "--seed", "13", "--out", clean)
    check(r.returncode == 0, r.stderr.decode())
    from datetime import datetime
    lines = read(clean).decode().splitlines()
    def ts(line):
        return datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()
    rng = random.Random(5)
    # Each event arrives up to 4 minutes of event time after it happened (allowed: 5m).
    shuffled = sorted(lines, key=lambda l: ts(l) + rng.uniform(0, 240))
    check(shuffled != lines, "the shuffle changed nothing")
    mixed = os.path.join(tmp, "shuffled.jsonl")
    with open(mixed, "w") as f:
        f.write("\n".join(shuffled) + "\n")
    with open(PIPELINE) as f:
        text = f.read()
    check("  allowed: 5m" in text, "the example pipeline's lateness changed")
    pipeline = os.path.join(tmp, "event-time.yaml")
    with open(pipeline, "w") as f:
        f.write(text.replace("  allowed: 5m", "  allowed: 5m\n  order: event_time", 1))
    features = {}
    for name, path in (("sorted", clean), ("shuffled", mixed)):
        r = run(vigil, "run", "-c", pipeline, "--input", path, "--decisions", "-", "--no-event",
                "--emit-features", "--quiet", "--summary-json", os.path.join(tmp, name + ".json"))
        check(r.returncode == 0, r.stderr.decode())
        s = summary(os.path.join(tmp, name + ".json"))
        check(s["late"] == 0 and s["decided"] == 20000, f"{name}: {s}")
        features[name] = {d["event_id"]: d["features"]
                          for d in map(json.loads, r.stdout.decode().splitlines())}
    diff = [k for k in features["sorted"] if features["sorted"][k] != features["shuffled"][k]]
    check(not diff, f"{len(diff)} events got other features, e.g. {diff[:3]}")
    print("20000 events shuffled within 4 minutes: identical features")


def scenario_resume_event_time(vigil, tmp):
    """kill -9 while events are held for the watermark (lateness.order: event_time)."""
    inp = make_input(vigil, tmp, 60000)
    with open(PIPELINE) as f:
        text = f.read()
    pipeline = os.path.join(tmp, "event-time.yaml")
    with open(pipeline, "w") as f:
        f.write(text.replace("  allowed: 5m", "  allowed: 5m\n  order: event_time", 1))
    interrupted_then_resumed(vigil, tmp, inp, signal.SIGKILL, pipeline)


def scenario_resume_after_kill(vigil, tmp):
    inp = make_input(vigil, tmp, 60000)
    done = interrupted_then_resumed(vigil, tmp, inp, signal.SIGKILL)
    print(f"killed after {done} committed records; resumed output equals the clean run")


def scenario_sigint_then_resume(vigil, tmp):
    inp = make_input(vigil, tmp, 60000)
    interrupted_then_resumed(vigil, tmp, inp, signal.SIGINT)


def scenario_resume_csv_header(vigil, tmp):
    clean = os.path.join(tmp, "in.csv")
    r = run(vigil, "generate", "--events", "60000", "--seed", "3", "--out", clean)
    check(r.returncode == 0, r.stderr.decode())
    interrupted_then_resumed(vigil, tmp, clean, signal.SIGKILL, PIPELINE_CSV)


def scenario_stdin_pipe(vigil, tmp):
    inp = make_input(vigil, tmp, 5000)
    ref = clean_run(vigil, tmp, inp)
    with open(inp, "rb") as f:
        r = subprocess.run([vigil, "run", "-c", PIPELINE, "--input", "-", "--quiet", "--emit-features",
                            "--dead-letters", os.path.join(tmp, "dl.jsonl"),
                            "--late", os.path.join(tmp, "late.jsonl"),
                            "--summary-json", os.path.join(tmp, "s.json")],
                           stdin=f, capture_output=True, timeout=100)
    check(r.returncode == 0, r.stderr.decode())
    check(r.stdout == read(os.path.join(ref, "decisions.jsonl")), "stdout decisions differ")
    dl_ref = read(os.path.join(ref, "dead_letters.jsonl")).replace(inp.encode(), b"stdin")
    check(read(os.path.join(tmp, "dl.jsonl")) == dl_ref, "dead letters differ")
    s = summary(os.path.join(tmp, "s.json"))
    check(counters(s) == counters(summary(os.path.join(ref, "summary.json"))), f"{s}")
    check(s["dead_lettered"] > 0 and s["duplicate"] > 0, f"test input lacks bad records: {s}")


def scenario_generate_then_run(vigil, tmp):
    for fmt, pipeline in (("jsonl", PIPELINE), ("csv", PIPELINE_CSV)):
        path = os.path.join(tmp, f"g.{fmt}")
        r = run(vigil, "generate", "--events", "20000", "--seed", "11", "--out", path)
        check(r.returncode == 0, r.stderr.decode())
        out = os.path.join(tmp, f"out-{fmt}")
        r = run(vigil, "run", "-c", pipeline, "--input", path, "--out", out, "--quiet")
        check(r.returncode == 0, r.stderr.decode())
        s = summary(os.path.join(out, "summary.json"))
        check(s["read"] == 20000 and s["decided"] == 20000 and s["dead_lettered"] == 0,
              f"{fmt}: generated data must decode cleanly: {s}")
        lines = read(os.path.join(out, "decisions.jsonl")).splitlines()
        check(len(lines) == 20000, f"{fmt}: {len(lines)} decisions")
        d = json.loads(lines[0])
        for key in ("event_id", "outcome", "score", "reasons"):
            check(key in d, f"decision lacks {key}: {d}")


def scenario_demo(vigil, tmp):
    out = os.path.join(tmp, "demo")
    r = run(vigil, "demo", "--events", "30000", "--out", out, "--progress", "--train-events",
            "20000", "--listen", "none")
    check(r.returncode == 0, r.stderr.decode())
    err = r.stderr.decode()
    # The first run trains the demo's model on generated history; decisions carry its score.
    check("training a model on 20000" in err and os.path.exists(os.path.join(out, "model.json")),
          f"the demo did not train its model: {err}")
    first = json.loads(read(os.path.join(out, "decisions.jsonl")).splitlines()[0])
    check(0 <= first["model_score"] <= 1, f"no model score: {first}")
    check("events/s" in err and "counters reconcile" in err, f"demo output: {err}")
    s = summary(os.path.join(out, "summary.json"))
    check(s["read"] == 30000 and s["reconciled"], f"{s}")
    check(len(read(os.path.join(out, "decisions.jsonl")).splitlines()) == s["decided"], "lines")
    # The demo's rules raise alerts; they land in its alert store, which `vigil alerts` lists.
    check(s["alerts"] > 0 and len(stored_alerts(out)) == s["alerts"], f"alerts: {s}")
    check("vigil alerts --db" in err, f"the demo does not say how to list its alerts: {err}")
    r = run(vigil, "demo", "--events", "5000", "--out", out, "--quiet", "--listen", "none")
    check(r.returncode == 0 and b"scoring with the model in" in r.stderr and
          b"training" not in r.stderr, f"the second run must reuse the model: {r.stderr.decode()}")


def scenario_refuses_completed_dir(vigil, tmp):
    inp = make_input(vigil, tmp, 2000)
    out = clean_run(vigil, tmp, inp)
    before = read(os.path.join(out, "decisions.jsonl"))
    r = run(vigil, "run", "-c", PIPELINE, "--input", inp, "--out", out, "--quiet")
    check(r.returncode == 2, f"exit {r.returncode}")
    check(b"completed run" in r.stderr and b"--overwrite" in r.stderr, r.stderr.decode())
    check(read(os.path.join(out, "decisions.jsonl")) == before, "outputs were touched")
    r = run(vigil, "run", "-c", PIPELINE, "--input", inp, "--out", out, "--quiet", "--overwrite",
            "--emit-features")
    check(r.returncode == 0 and read(os.path.join(out, "decisions.jsonl")) == before,
          "--overwrite must redo the run and give the same output")


def scenario_rules_catch_patterns(vigil, tmp):
    """The example's starter rules on generated data: precision and recall, by pattern."""
    inp = os.path.join(tmp, "g.jsonl")
    r = run(vigil, "generate", "--events", "100000", "--seed", "9", "--out", inp)
    check(r.returncode == 0, r.stderr.decode())
    out = os.path.join(tmp, "out")
    r = run(vigil, "run", "-c", PIPELINE, "--input", inp, "--out", out, "--quiet")
    check(r.returncode == 0, r.stderr.decode())
    from collections import Counter
    seen, caught, hits = Counter(), Counter(), Counter()
    tp = fp = fn = 0
    for line in read(os.path.join(out, "decisions.jsonl")).splitlines():
        d = json.loads(line)
        alert, fraud = d["outcome"] != "approve", d["event"]["is_fraud"] is True
        pattern = d["event"]["pattern"]
        seen[pattern] += 1
        caught[pattern] += alert
        tp, fp, fn = tp + (alert and fraud), fp + (alert and not fraud), fn + (fraud and not alert)
        for reason in d["reasons"]:
            hits[reason["code"]] += 1
        for rule in d.get("shadow", []):
            hits[rule] += 1
        check(d["rules_version"] == 1, f"rules_version: {d}")
        if alert:
            check(d["narrative"] and d["event"]["card_id"] not in d["narrative"],
                  f"an alert needs a narrative with the card masked: {d['narrative']}")
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print(f"starter rules on 100k generated events: precision {precision:.3f}, "
          f"recall {recall:.3f} ({tp + fp} alerts)")
    for pattern in sorted(seen):
        print(f"  {pattern:18} flagged {caught[pattern]:6} of {seen[pattern]}")
    s = summary(os.path.join(out, "summary.json"))
    check(s["rule_hits"] == dict(hits), f"summary rule_hits {s['rule_hits']} vs decisions {hits}")
    # Measured 0.940 and 0.490 on this data (seed 9); the bounds leave room for tuning.
    check(precision >= 0.85 and recall >= 0.45, "the starter rules got worse")
    check(len(stored_alerts(out)) == tp + fp, "the alert store lacks alerts")
    r = run(vigil, "alerts", "--db", os.path.join(out, "alerts.db"), "--rule", "card_testing",
            "--outcome", "block", "--limit", "100000", "--json")
    check(r.returncode == 0, r.stderr.decode())
    listed = [json.loads(line) for line in r.stdout.decode().splitlines()]
    check(listed and all(d["outcome"] == "block" and
                         any(x["code"] == "card_testing" for x in d["reasons"]) for d in listed),
          "vigil alerts --rule/--outcome returned other alerts")
    check(caught["card_testing"] >= 0.8 * seen["card_testing"], "card testing is missed")
    check(caught["legit_outlier"] <= 0.05 * seen["legit_outlier"], "outliers are flagged")


def scenario_reload_under_load(vigil, tmp):
    """Rules edited while a run goes on: one switch point, nothing lost; a bad edit is kept out."""
    inp = os.path.join(tmp, "g.jsonl")
    r = run(vigil, "generate", "--events", "60000", "--seed", "4", "--out", inp)
    check(r.returncode == 0, r.stderr.decode())
    pipeline = os.path.join(tmp, "p.yaml")
    shutil.copy(PIPELINE, pipeline)
    out = os.path.join(tmp, "out")
    speed = f"{event_time_span(inp) / 8:.0f}x"
    proc = subprocess.Popen([vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet",
                             "--speed", speed], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pid_file = os.path.join(out, "vigil.pid")
        deadline = time.time() + 30
        while not os.path.exists(pid_file) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        with open(pipeline) as f:
            text = f.read()
        broken = text.replace("rules:\n", "rules:\n  - {id: broken, when: \"amount >\", score: 1}\n",
                              1)
        good = text.replace("rules:\n", "rules:\n  - id: reload_marker\n    when: amount >= 0\n"
                            "    score: 1\n", 1)
        with open(pipeline, "w") as f:
            f.write(broken)
        r = run(vigil, "reload", "--out", out)  # SIGHUP through DIR/vigil.pid
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(1.5)
        with open(pipeline, "w") as f:
            f.write(good)  # picked up by the file watch, no signal
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    check(proc.returncode == 0, err)
    check("reload refused, rules version 1 stays in force" in err and "(broken).when" in err,
          f"the bad edit was not refused with its place: {err}")
    check("rules reloaded: version 2" in err, f"the good edit was not loaded: {err}")
    versions = []
    for line in read(os.path.join(out, "decisions.jsonl")).splitlines():
        d = json.loads(line)
        marked = any(x["code"] == "reload_marker" for x in d["reasons"])
        check(marked == (d["rules_version"] == 2), f"version and rules disagree: {d}")
        versions.append(d["rules_version"])
    check(len(versions) == 60000, f"{len(versions)} decisions for 60000 events")
    switch = versions.index(2) if 2 in versions else -1
    check(0 < switch and set(versions[:switch]) == {1} and set(versions[switch:]) == {2},
          "decisions must switch from version 1 to 2 at one point")
    print(f"switched to rules version 2 at decision {switch} of 60000; the bad edit was refused")


def scenario_tokenized_outputs(vigil, tmp):
    """privacy.tokenize: no card number leaves in decisions, reasons, narratives or alerts."""
    inp = os.path.join(tmp, "g.jsonl")
    r = run(vigil, "generate", "--events", "20000", "--seed", "2", "--out", inp)
    check(r.returncode == 0, r.stderr.decode())
    pipeline = os.path.join(tmp, "p.yaml")
    with open(PIPELINE) as f:
        text = f.read()
    with open(pipeline, "w") as f:
        f.write(text + "\nprivacy:\n  tokenize: [card_id, account_id]\n")
    out = os.path.join(tmp, "out")
    cmd = ["run", "-c", pipeline, "--input", inp, "--out", out, "--quiet", "--overwrite"]
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_TOKEN_KEY"}
    r = run(vigil, *cmd, env=env)
    check(r.returncode == 2 and b"VIGIL_TOKEN_KEY" in r.stderr, f"no key: {r.stderr.decode()}")
    env["VIGIL_TOKEN_KEY"] = "0123456789abcdef0123456789abcdef"
    r = run(vigil, *cmd, env=env)
    check(r.returncode == 0, r.stderr.decode())
    cards = {json.loads(line)["card_id"] for line in read(inp).decode().splitlines()}
    decisions = read(os.path.join(out, "decisions.jsonl")).decode()
    alerts = "\n".join(stored_alerts(out))
    check(alerts, "the run raised no alerts to check")
    leaked = [c for c in cards if c in decisions or c in alerts]
    check(not leaked, f"{len(leaked)} card numbers left the engine, e.g. {leaked[:2]}")
    first = [json.loads(line)["key"] for line in decisions.splitlines()[:100]]
    check(all(k.startswith("tok_") for k in first), f"keys: {first[:3]}")
    r = run(vigil, *cmd, env=env)
    again = [json.loads(line)["key"] for line in
             read(os.path.join(out, "decisions.jsonl")).decode().splitlines()[:100]]
    check(again == first, "tokens must be the same across runs with the same key")


def scenario_http_api(vigil, tmp):
    """/healthz, /readyz, /metrics, /api/alerts and, with tokens, cases, the audit log and a
    rules reload over real HTTP while a run goes on; then the dispositions as labels."""
    import urllib.error
    import urllib.request
    inp = os.path.join(tmp, "g.jsonl")
    r = run(vigil, "generate", "--events", "40000", "--seed", "5", "--out", inp)
    check(r.returncode == 0, r.stderr.decode())
    out = os.path.join(tmp, "out")
    speed = f"{event_time_span(inp) / 6:.0f}x"
    viewer, analyst, admin = ("viewer-" + "v" * 20, "analyst-" + "a" * 20, "admin-" + "o" * 20)
    env = dict(os.environ,
               VIGIL_API_TOKENS=f"dash:viewer:{viewer},ann:analyst:{analyst},ops:admin:{admin}")
    proc = subprocess.Popen([vigil, "run", "-c", PIPELINE, "--input", inp, "--out", out, "--quiet",
                             "--speed", speed, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    def call(path, token=viewer, body=None):
        req = urllib.request.Request(base + path, method="GET" if body is None else "POST",
                                     data=None if body is None else json.dumps(body).encode())
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def get(path):
        return call(path)

    try:
        line = proc.stderr.readline().decode()
        check("serving http://" in line, f"no address announced: {line}")
        check("3 API tokens" in line, f"tokens not announced: {line}")
        base = "http://" + line.split("serving http://")[1].split()[0]
        check(get("/healthz") == (200, "ok\n"), "healthz")
        check(get("/readyz")[0] == 200, "readyz during the run")
        time.sleep(2.5)
        status, metrics = get("/metrics")
        check(status == 200, f"metrics: {status}")
        for name in ("vigil_events_read_total", "vigil_decisions_total{outcome=\"block\"}",
                     "vigil_rule_hits_total", "vigil_state_entities", "vigil_rules_version 1",
                     "# TYPE vigil_events_read_total counter"):
            check(name in metrics, f"/metrics lacks {name}")
        read_line = [l for l in metrics.splitlines() if l.startswith("vigil_events_read_total{")]
        check(read_line and int(read_line[0].split()[-1]) > 0, f"nothing read yet: {read_line}")
        status, body = get("/api/alerts?limit=2")
        check(status == 200, f"alerts: {status} {body}")
        page = json.loads(body)
        check(len(page["alerts"]) <= 2 and page["limit"] == 2, f"page: {body[:300]}")
        status, body = get("/api/alerts?limit=5000")
        check(status == 400 and "'limit' must be an integer from 1 to 1000" in body, body)
        status, body = get("/api/alerts?outcome=maybe")
        check(status == 400 and "review or block" in body, body)
        check(get("/no-such-thing")[0] == 404, "unknown path")

        # The live stream: alerts as the store commits them, and the counters each second.
        req = urllib.request.Request(base + "/api/stream")
        req.add_header("Authorization", "Bearer " + viewer)
        seen = {}
        with urllib.request.urlopen(req, timeout=10) as stream:
            check(stream.headers["Content-Type"].startswith("text/event-stream"),
                  f"stream type: {stream.headers['Content-Type']}")
            event = None
            deadline = time.time() + 15
            while len(seen) < 2 and time.time() < deadline:
                line = stream.readline().decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event:
                    seen.setdefault(event, json.loads(line[6:]))
        check("alert" in seen and "event_id" in seen["alert"], f"no alert streamed: {seen}")
        check("kpi" in seen and seen["kpi"]["read"] > 0 and "block" in seen["kpi"]["outcomes"],
              f"no kpi streamed: {seen}")

        # Auth: no token, a wrong one, too weak a role.
        status, body = call("/api/alerts", token=None)
        check(status == 401 and "missing bearer token" in body, f"{status} {body}")
        status, body = call("/api/alerts", token="x" * 24)
        check(status == 401 and "unknown token" in body, f"{status} {body}")
        status, body = call("/api/cases", token=viewer, body={"alerts": ["x"]})
        check(status == 403 and "needs the analyst role" in body, f"{status} {body}")

        # A case over three alerts, as an analyst would work it.
        ids = [a["event_id"] for a in json.loads(get("/api/alerts?limit=3")[1])["alerts"]]
        check(len(ids) == 3, f"too few alerts yet: {ids}")
        status, body = call(f"/api/alerts/{ids[0]}")
        check(status == 200 and json.loads(body)["alert"]["event_id"] == ids[0], body[:300])
        status, body = call("/api/cases", token=analyst, body={"alerts": ids[:2], "title": "t"})
        check(status == 201, f"create: {status} {body}")
        case = json.loads(body)["id"]
        status, body = call("/api/cases", token=analyst, body={"alerts": [ids[2]]})
        check(status == 201, f"create: {status} {body}")
        other = json.loads(body)["id"]
        status, body = call("/api/cases", token=analyst, body={"alerts": ids[0]})
        check(status == 400 and "field 'alerts' must be a non-empty array" in body, body)
        status, body = call(f"/api/cases/{case}/assign", token=analyst, body={"assignee": "ann"})
        check(status == 200 and json.loads(body)["assignee"] == "ann", f"{status} {body}")
        status, body = call(f"/api/cases/{case}/close", token=analyst,
                            body={"disposition": "fraud", "comment": "confirmed"})
        check(status == 200 and json.loads(body)["status"] == "closed", f"{status} {body}")
        status, body = call(f"/api/cases/{case}/close", token=analyst, body={"disposition": "fraud"})
        check(status == 409, f"closed twice: {status} {body}")
        status, body = call(f"/api/cases/{other}/close", token=analyst,
                            body={"disposition": "not_fraud"})
        check(status == 200, f"{status} {body}")
        check(call("/api/cases/999999")[0] == 404, "unknown case")
        status, body = call("/api/cases?status=closed&limit=10")
        check(status == 200 and json.loads(body)["total"] == 2, body[:300])
        status, body = call("/api/audit", token=analyst)
        check(status == 403, f"audit as analyst: {status}")
        status, body = call(f"/api/audit?object=case/{case}", token=admin)
        entries = json.loads(body)["entries"]
        check([e["action"] for e in entries] == ["case.close", "case.assign", "case.create"],
              f"audit: {body[:500]}")
        check(entries[0]["before"]["status"] == "open" and entries[0]["after"]["status"] == "closed"
              and entries[0]["actor"] == "ann", f"audit close entry: {entries[0]}")

        # Rules: what is in force, then a reload through the API.
        status, body = call("/api/rules")
        rules = json.loads(body)
        check(status == 200 and rules["version"] == 1 and rules["rules"], body[:300])
        status, body = call("/api/rules/reload", token=admin, body={})
        check(status == 200 and json.loads(body)["version"] == 2, f"reload: {status} {body}")
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    check(proc.returncode == 0, err.decode())
    s = summary(os.path.join(out, "summary.json"))
    check(s["read"] == 40000, f"{s}")

    # The dispositions are labels: exported, and joined by event id in training.
    db = os.path.join(out, "alerts.db")
    r = run(vigil, "labels", "--db", db)
    check(r.returncode == 0, r.stderr.decode())
    labels = r.stdout.decode().splitlines()
    check(labels[0] == "event_id,label" and sorted(labels[1:]) ==
          sorted([f"{ids[0]},1", f"{ids[1]},1", f"{ids[2]},0"]), f"labels: {labels}")
    r = run(vigil, "train", "-c", PIPELINE, "--input", inp, "--labels-db", db, "--out",
            os.path.join(tmp, "m.json"))
    check(r.returncode == 2 and b"3 labels from closed cases" in r.stderr
          and b": 3 labelled events: too few" in r.stderr, r.stderr.decode())

    r = run(vigil, "run", "-c", PIPELINE, "--input", inp, "--out", out, "--overwrite", "--quiet",
            "--listen", "127.0.0.1:notaport")
    check(r.returncode == 2 and b"expected HOST:PORT" in r.stderr, r.stderr.decode())
    print("served /healthz, /readyz, /metrics, /api/alerts, the live stream, cases, audit and a "
          "rules reload; dispositions exported as labels")


def alert_quality(decisions_path):
    """(precision, recall) of the alerts in a decisions file against the generator's labels."""
    tp = fp = fn = 0
    for line in read(decisions_path).splitlines():
        d = json.loads(line)
        alert, fraud = d["outcome"] != "approve", d["event"]["is_fraud"] is True
        tp, fp, fn = tp + (alert and fraud), fp + (alert and not fraud), fn + (fraud and not alert)
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def scenario_train_then_score(vigil, tmp):
    """vigil train on labelled history; the model then scores live and beats rules alone."""
    history, later = os.path.join(tmp, "history.jsonl"), os.path.join(tmp, "later.jsonl")
    for path, events, seed in ((history, 120000, 21), (later, 40000, 22)):
        r = run(vigil, "generate", "--events", str(events), "--seed", str(seed), "--out", path)
        check(r.returncode == 0, r.stderr.decode())
    model = os.path.join(tmp, "models", "model.json")
    r = run(vigil, "train", "-c", PIPELINE, "--input", history, "--label", "is_fraud", "--out",
            model, timeout=280)
    check(r.returncode == 0, r.stderr.decode())
    print(r.stderr.decode().strip())
    meta = summary(os.path.join(tmp, "models", "model.meta.json"))
    check(meta["features"][:3] == ["amount", "lat", "lon"] and "is_fraud" not in meta["features"],
          f"model columns: {meta['features']}")
    with open(PIPELINE) as f:
        text = f.read()
    pipeline = os.path.join(tmp, "with-model.yaml")
    with open(pipeline, "w") as f:
        f.write(text + "\nmodel:\n  path: models/model.json\n  weight: 60\n")
    quality = {}
    for name, p in (("rules", PIPELINE), ("rules+model", pipeline)):
        out = os.path.join(tmp, name)
        r = run(vigil, "run", "-c", p, "--input", later, "--out", out, "--quiet", "--listen", "none")
        check(r.returncode == 0, r.stderr.decode())
        quality[name] = alert_quality(os.path.join(out, "decisions.jsonl"))
        if name == "rules+model":
            # Later traffic from the same generator: live scores spread like training's.
            psi = summary(os.path.join(out, "summary.json"))["model_psi"]
            print(f"model score PSI against training: {psi:.4f}")
            check(psi < 0.1, f"model score PSI {psi} on traffic like the training data")
        print(f"{name:12} on 40k later events: precision {quality[name][0]:.3f}, "
              f"recall {quality[name][1]:.3f}")
    r = run(vigil, "eval", "-c", pipeline, "--input", later, "--label", "is_fraud", "--json")
    check(r.returncode == 0, r.stderr.decode())
    ev = json.loads(r.stdout)
    print(f"vigil eval --json: {r.stdout.decode().strip()}")
    for side in ("rules", "model", "combined"):
        check(all(k in ev[side] for k in ("roc_auc", "pr_auc", "precision", "recall")), f"{ev}")
    check(ev["model"]["pr_auc"] > ev["rules"]["pr_auc"] + 0.2 and
          ev["combined"]["recall"] > ev["rules"]["recall"] + 0.2,
          f"the model must beat rules alone on held-out data: {ev}")
    # eval scores the data as a live run decides it: the same alerts, so the same figures.
    for side, name in (("rules", "rules"), ("combined", "rules+model")):
        live = quality[name]
        check(abs(ev[side]["precision"] - live[0]) < 1e-5 and abs(ev[side]["recall"] - live[1]) < 1e-5,
              f"eval's {side} figures differ from the live run's {live}: {ev[side]}")
    first = json.loads(read(os.path.join(tmp, "rules+model", "decisions.jsonl")).splitlines()[0])
    check(0 <= first["model_score"] <= 1, f"no model score: {first}")
    # Alerts whose model score reached explain_at name their top TreeSHAP drivers, columns of
    # the model, in the model reason and the narrative; approvals never pay for it.
    explained, example = 0, None
    for line in read(os.path.join(tmp, "rules+model", "decisions.jsonl")).splitlines():
        d = json.loads(line)
        reason = next((r for r in d["reasons"] if r["code"] == "model"), None)
        has_drivers = reason is not None and "; top drivers: " in reason["detail"]
        if d["outcome"] == "approve" or reason is None:
            check(not has_drivers, f"explained without an alert from the model: {d}")
            continue
        check(has_drivers, f"an alert's model reason names no drivers: {d}")
        drivers = reason["detail"].split("; top drivers: ")[1].split(", ")
        names = [x.split("=")[0] for x in drivers]
        check(1 <= len(names) <= 3 and all(n in meta["features"] for n in names) and
              all(x.split("=")[1][0] in "+-" for x in drivers), f"drivers {drivers}: {d}")
        check("Model score " in d.get("narrative", "") and
              f"(top drivers: {names[0]} " in d["narrative"], f"narrative: {d}")
        explained += 1
        example = example or d
    check(explained > 50, f"only {explained} alerts explained")
    print(f"{explained} alerts explained, e.g. reason: "
          f"{next(r for r in example['reasons'] if r['code'] == 'model')['detail']}; "
          f"narrative: {example['narrative']}")
    (p_rules, r_rules), (p_both, r_both) = quality["rules"], quality["rules+model"]
    check(r_both >= r_rules + 0.2 and p_both >= 0.7,
          f"the model must add recall at a fair precision: {quality}")
    # A model whose features are not the pipeline's is refused, with the way out.
    with open(pipeline, "w") as f:
        f.write(text.replace("  - {name: card_txn_10m,", "  - {name: card_txn_10m_x,", 1) +
                "\nmodel:\n  path: models/model.json\n")
    r = run(vigil, "check", "-c", pipeline)
    check(r.returncode == 2 and b"retrain with vigil train" in r.stderr, r.stderr.decode())


def scenario_model_reload(vigil, tmp):
    """The model swapped while a run goes on: one switch point; a model that does not fit is kept
    out. Then a challenger in shadow: scored beside the champion, compared, never acting."""
    history, inp = os.path.join(tmp, "history.jsonl"), os.path.join(tmp, "g.jsonl")
    for path, events, seed in ((history, 30000, 31), (inp, 60000, 32)):
        r = run(vigil, "generate", "--events", str(events), "--seed", str(seed), "--out", path)
        check(r.returncode == 0, r.stderr.decode())
    trees = {}
    for name, rounds in (("a", 12), ("b", 3)):
        model = os.path.join(tmp, name, "model.json")
        r = run(vigil, "train", "-c", PIPELINE, "--input", history, "--label", "is_fraud",
                "--rounds", str(rounds), "--out", model, timeout=280)
        check(r.returncode == 0, r.stderr.decode())
        trees[name] = summary(os.path.join(tmp, name, "model.meta.json"))["trees"]
    check(trees["a"] != trees["b"], f"the two models must differ: {trees}")
    models = os.path.join(tmp, "models")
    os.makedirs(models)
    for f in ("model.json", "model.meta.json"):
        shutil.copy(os.path.join(tmp, "a", f), os.path.join(models, f))
    pipeline = os.path.join(tmp, "p.yaml")
    with open(PIPELINE) as f:
        text = f.read()
    with open(pipeline, "w") as f:  # explain_at 0: every decision names its model's tree count
        f.write(text + "\nmodel:\n  path: models/model.json\n  weight: 60\n  explain_at: 0\n")
    out = os.path.join(tmp, "out")
    speed = f"{event_time_span(inp) / 10:.0f}x"
    proc = subprocess.Popen([vigil, "run", "-c", pipeline, "--input", inp, "--out", out, "--quiet",
                             "--speed", speed], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pid_file = os.path.join(out, "vigil.pid")
        deadline = time.time() + 30
        while not os.path.exists(pid_file) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        # Metadata whose columns are not the pipeline's: refused by the file watch.
        meta_path = os.path.join(models, "model.meta.json")
        meta = summary(meta_path)
        meta["features"][3] = meta["features"][3] + "_renamed"
        with open(meta_path, "w") as f:
            json.dump(meta, f)
        time.sleep(2)
        for f in ("model.json", "model.meta.json"):
            shutil.copy(os.path.join(tmp, "b", f), os.path.join(models, f))
        r = run(vigil, "reload", "--out", out)  # SIGHUP through DIR/vigil.pid
        check(r.returncode == 0, r.stderr.decode())
        _, err = proc.communicate(timeout=200)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    check(proc.returncode == 0, err)
    check("model reload refused, the running model" in err and "retrain with vigil train" in err,
          f"the model that does not fit was not refused with the difference: {err}")
    check(f"model reloaded: {os.path.join(models, 'model.json')}, {trees['b']} trees" in err,
          f"the new model was not loaded: {err}")
    used = []
    for line in read(os.path.join(out, "decisions.jsonl")).splitlines():
        d = json.loads(line)
        detail = next(x["detail"] for x in d["reasons"] if x["code"] == "model")
        used.append("b" if f"({trees['b']} trees" in detail else "a")
    check(len(used) == 60000, f"{len(used)} decisions for 60000 events")
    switch = used.index("b") if "b" in used else -1
    check(0 < switch and set(used[:switch]) == {"a"} and set(used[switch:]) == {"b"},
          "decisions must switch from model a to model b at one point")
    print(f"switched from {trees['a']} to {trees['b']} trees at decision {switch} of 60000; "
          "the model with other columns was refused:")
    print("\n".join(x for x in err.splitlines() if "model" in x))

    # Champion a, challenger b: the decisions are those of a alone, plus challenger_score; the
    # summary compares the two.
    for f in ("model.json", "model.meta.json"):
        shutil.copy(os.path.join(tmp, "a", f), os.path.join(models, f))
        os.makedirs(os.path.join(tmp, "challenger"), exist_ok=True)
        shutil.copy(os.path.join(tmp, "b", f), os.path.join(tmp, "challenger", f))
    head = text + "\nmodel:\n  path: models/model.json\n  weight: 60\n"
    runs = {}
    for name, extra in (("alone", ""), ("shadow", "  challenger: {path: challenger/model.json}\n")):
        with open(pipeline, "w") as f:
            f.write(head + extra)
        o = os.path.join(tmp, name)
        r = run(vigil, "run", "-c", pipeline, "--input", inp, "--out", o, "--quiet", "--listen",
                "none")
        check(r.returncode == 0, r.stderr.decode())
        runs[name] = [json.loads(x) for x in read(os.path.join(o, "decisions.jsonl")).splitlines()]
        if name == "shadow":
            text_summary = r.stderr.decode()
    alone, shadow = runs["alone"], runs["shadow"]
    check(len(alone) == len(shadow) == 60000, "one decision per event")
    diff = 0.0
    for a, b in zip(alone, shadow):
        c = b.pop("challenger_score", None)
        check(c is not None and 0 <= c <= 1, f"no challenger score: {b}")
        check(a == b, f"the challenger changed a decision:\n{a}\n{b}")
        diff += abs(c - a["model_score"])
    ch = summary(os.path.join(tmp, "shadow", "summary.json"))["challenger"]
    check(ch["scored"] == 60000 and abs(ch["mean_abs_diff"] - diff / 60000) < 1e-5 and
          0 < ch["disagree"] < 60000, f"challenger summary {ch} (mean |diff| {diff / 60000:.6f})")
    check("challenger     mean |score - champion's|" in text_summary, text_summary)
    print(f"challenger ({trees['b']} trees) beside the champion ({trees['a']}): {ch}")


def main():
    vigil, name = os.path.abspath(sys.argv[1]), sys.argv[2]
    fn = globals().get(f"scenario_{name}")
    if not fn:
        sys.exit(f"unknown scenario {name}")
    tmp = tempfile.mkdtemp(prefix=f"vigil-{name}-")
    try:
        fn(vigil, tmp)
    except Failure as e:
        print(f"FAIL {name}: {e}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
