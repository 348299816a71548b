#!/usr/bin/env python3
"""vigil run against the real broker: exactly once across crashes, failover and a broker restart.

Usage: engine_scenarios.py VIGIL SCENARIO. Needs VIGIL_KAFKA_DIR (a running
scripts/kafka-broker DIR), VIGIL_KAFKA_TOOL and VIGIL_KAFKA_BROKER; ctest sets them
(tests/kafka/CMakeLists.txt). Every scenario uses fresh topics and groups, reads Vigil's
outputs with read_committed, and compares each decision, features included, with an
uninterrupted run's over the same input topic.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PIPELINE = os.path.join(ROOT, "examples", "card-fraud.yaml")
PARTITIONS = int(os.environ.get("VIGIL_KAFKA_PARTITIONS", "4"))


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Cluster:
    def __init__(self, vigil, tmp):
        self.vigil = vigil
        self.tmp = tmp
        self.dir = os.environ["VIGIL_KAFKA_DIR"]
        self.tool = os.environ["VIGIL_KAFKA_TOOL"]
        self.broker = os.environ.get("VIGIL_KAFKA_BROKER", os.path.join(ROOT, "scripts", "kafka-broker"))
        self.suffix = str(time.time_ns())

    @property
    def bootstrap(self):
        with open(os.path.join(self.dir, "bootstrap")) as f:
            return f.read().strip()

    def topic(self, name, partitions=PARTITIONS):
        t = f"{name}-{self.suffix}"
        r = subprocess.run([self.tool, "create-topic", "--bootstrap", self.bootstrap, "--topic", t,
                            "--partitions", str(partitions)], capture_output=True, timeout=60)
        check(r.returncode == 0, f"create-topic {t}: {r.stderr.decode()}")
        return t

    def produce(self, topic, path, rate=0, wait=True):
        cmd = [self.tool, "produce", "--bootstrap", self.bootstrap, "--topic", topic, "--input", path,
               "--key-field", "card_id"]
        if rate:
            cmd += ["--rate", str(rate)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if not wait:
            return p
        out, err = p.communicate(timeout=300)
        check(p.returncode == 0, f"produce: {err.decode()}")
        return p

    def consume(self, topic, expect, timeout=90, at_least=False):
        out = os.path.join(self.tmp, f"{topic}.jsonl")
        r = subprocess.run([self.tool, "consume", "--bootstrap", self.bootstrap, "--topic", topic,
                            "--expect", str(expect), "--timeout", str(timeout), "--read-committed",
                            "--grace", "3", "--out", out] + (["--at-least"] if at_least else []),
                           capture_output=True, timeout=timeout + 30)
        check(r.returncode == 0, f"expected {'at least' if at_least else 'exactly'} {expect} committed "
                                 f"messages on {topic}: {r.stderr.decode().strip()}")
        with open(out) as f:
            return [json.loads(line) for line in f if line.strip()]

    def pipeline(self, name, topics, decisions, dead, alerts=None, session_ms=6000, txn_timeout_ms=None,
                 snapshots="1s", exactly_once=True):
        """The card-fraud example with a kafka: section for this scenario (partition state
        snapshots every `snapshots`, or off: restores replay each partition from its start)."""
        with open(PIPELINE) as f:
            text = f.read().split("\nkafka:")[0]  # the example's own kafka: section is replaced
        outputs = f"{{decisions: {decisions}, dead_letters: {dead}" + (f", alerts: {alerts}}}" if alerts else "}")
        text += (f"\nkafka:\n  group: {name}-{self.suffix}\n  topics: [{', '.join(topics)}]\n"
                 f"  outputs: {outputs}\n  commit_interval: 100ms\n"
                 f"  state: {{snapshot_interval: {snapshots}}}\n"
                 f"  consumer_properties: {{session.timeout.ms: {session_ms}, heartbeat.interval.ms: 1000}}\n")
        if not exactly_once:
            text += "  exactly_once: false\n"
        if txn_timeout_ms:
            # A killed process that is not restarted holds its partitions' consumers back until
            # its open transaction times out.
            text += f"  producer_properties: {{transaction.timeout.ms: {txn_timeout_ms}}}\n"
        # The model path in the example is relative to it: keep the file beside it.
        path = os.path.join(os.path.dirname(PIPELINE), f".kafka-{name}-{self.suffix}.yaml")
        with open(path, "w") as f:
            f.write(text)
        self.cleanup.append(path)
        return path

    def start(self, pipeline, *extra, idle="4s", out=None):
        cmd = [self.vigil, "run", "-c", pipeline, "--brokers", self.bootstrap, "--listen", "none",
               "--emit-features", "--exit-when-idle", idle, *extra]
        if out:
            cmd += ["--out", out]
        log = open(os.path.join(self.tmp, f"vigil-{time.time_ns()}.log"), "w+")
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        p.log = log
        return p

    def await_progress(self, p, pattern, timeout=60):
        """Waits until vigil's progress lines match `pattern` (a regular expression)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(p.log.name) as f:  # its own offset: the child shares p.log's
                text = f.read()
            if re.search(pattern, text):
                return
            check(p.poll() is None, f"vigil stopped early:\n{text[-2000:]}")
            time.sleep(0.2)
        raise Failure(f"no progress line matched {pattern!r} within {timeout} s")

    def kill_after_snapshot(self, p, who="vigil"):
        """kill -9 a second after vigil's progress shows a partition state snapshot sent (it
        commits within a commit interval): there is committed work, and work after it."""
        self.await_progress(p, "snapshots [1-9]")
        time.sleep(1)
        check(p.poll() is None, f"{who} stopped before it could be killed")
        p.kill()  # SIGKILL: no shutdown commit
        p.wait()

    def finish(self, p, timeout=180):
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise Failure("vigil did not stop by itself")
        p.log.seek(0)
        text = p.log.read()
        check(p.returncode == 0, f"vigil exited with {p.returncode}:\n{text[-3000:]}")
        return text

    cleanup = []


def generate(c, events, seed=11, bad=()):
    path = os.path.join(c.tmp, f"in-{seed}.jsonl")
    r = subprocess.run([c.vigil, "generate", "--events", str(events), "--seed", str(seed), "--out", path],
                       capture_output=True, timeout=120)
    check(r.returncode == 0, r.stderr.decode())
    if bad:
        with open(path, "a") as f:
            for line in bad:
                f.write(line + "\n")
    return path


def by_id(decisions):
    out = {}
    for d in decisions:
        d.pop("record", None)  # a process's own count, not part of the decision
        check(d["event_id"] not in out, f"event {d['event_id']} decided twice")
        out[d["event_id"]] = d
    return out


def same_decisions(got, want, what):
    if os.environ.get("VIGIL_KAFKA_DEBUG"):
        with open(os.environ["VIGIL_KAFKA_DEBUG"], "w") as f:
            json.dump({"got": got, "want": want}, f)
    g, w = by_id(got), by_id(want)
    check(set(g) == set(w), f"{what}: {len(set(w) - set(g))} events missing, {len(set(g) - set(w))} extra")
    diff = [k for k in w if g[k] != w[k]]
    if diff:
        k = diff[0]
        fields = {f: (w[k].get(f), g[k].get(f)) for f in w[k] if w[k].get(f) != g[k].get(f)}
        if "features" in fields:
            wf, gf = fields.pop("features")
            fields["features"] = {f: (wf.get(f), gf.get(f)) for f in wf if wf.get(f) != gf.get(f)}
        raise Failure(f"{what}: {len(diff)} decisions differ from the uninterrupted run's; "
                      f"first {k}: {json.dumps(fields)[:800]}")


def reference(c, topic, n):
    """Decisions of an uninterrupted run over `topic`."""
    out = c.topic("ref-decisions")
    dead = c.topic("ref-dead", 1)
    p = c.start(c.pipeline("ref", [topic], out, dead, snapshots="off"))
    c.finish(p)
    return c.consume(out, n)


def summary_of(log):
    return log[log.rfind("vigil: read"):] if "vigil: read" in log else log[-2000:]


def setup(c, name, n, seed, **pipeline_args):
    """N generated events in a file, an input topic, the output topics and a pipeline over them."""
    path = generate(c, n, seed=seed)
    src = c.topic("payments")
    dec, dead = c.topic("decisions"), c.topic("dead", 1)
    return path, src, dec, c.pipeline(name, [src], dec, dead, **pipeline_args)


def summary_count(log, label):
    """The number before `label` in the run's printed summary (0 when absent)."""
    text = summary_of(log)  # not the progress lines before it
    return int(text.split(label)[0].split()[-1]) if label in text else 0


# --- scenarios ------------------------------------------------------------------------------

def exactly_once(c):
    """N events in (some malformed) -> exactly N decisions and the bad ones as dead letters."""
    bad = ['not json at all', '{"event_id":"x-1","ts":"2026-01-01T00:00:00Z"}',
           '{"event_id":"x-2","ts":"yesterday","card_id":"4000000000000002","amount":1}']
    n = 20000
    path = generate(c, n, bad=bad)
    src = c.topic("payments")
    c.produce(src, path)
    dec, dead, alerts = c.topic("decisions"), c.topic("dead", 1), c.topic("alerts", 1)
    out = os.path.join(c.tmp, "out")
    p = c.start(c.pipeline("eo", [src], dec, dead, alerts), out=out)
    log = c.finish(p)
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    check(s["read"] == n + len(bad) and s["decided"] == n and s["dead_lettered"] == len(bad),
          f"counters: {json.dumps(s)[:400]}")
    check(s["reconciled"], "counters do not reconcile")
    check(s["kafka"]["partitions"] == PARTITIONS and s["kafka"]["commits"] > 0,
          f"kafka metrics: {s['kafka']}")
    check(0 < s["kafka"]["first_record_seconds"] < s["elapsed_seconds"],
          f"the first record's time is not inside the run: {s['kafka']}")
    decisions = c.consume(dec, n)
    check(len(by_id(decisions)) == n, "duplicate decisions")
    letters = c.consume(dead, len(bad))
    reasons = sorted(d["reason"] for d in letters)
    check(reasons == ["bad_timestamp", "missing_field", "parse_error"], f"dead-letter reasons: {reasons}")
    for d in letters:
        check(d["source"].startswith(f"kafka:{src}/") and d["raw"] in bad and d["message"],
              f"dead letter lacks its origin, raw record or message: {d}")
    got_alerts = c.consume(alerts, s["alerts"])
    check(all(a["outcome"] in ("review", "block") for a in got_alerts), "a non-alert on the alerts topic")
    print(f"ok: {n} decisions, {len(bad)} dead letters ({', '.join(reasons)}), {s['alerts']} alerts, "
          f"{s['kafka']['commits']} commits")


def kill_resume(c):
    """kill -9 mid-stream, restart: still exactly N decisions, the same as an uninterrupted run's."""
    n = 24000
    path, src, dec, pipeline = setup(c, "kr", n, seed=12)
    producer = c.produce(src, path, rate=4000, wait=False)  # ~6 s of traffic
    c.kill_after_snapshot(c.start(pipeline, "--progress", idle="5s"))
    p2 = c.start(pipeline, idle="5s")
    producer.communicate(timeout=120)
    log = c.finish(p2)
    replayed = summary_count(log, " records replayed")
    restored = summary_count(log, " partitions from snapshots")
    # Restored from snapshots (and the records after them, if any): the kill left committed work.
    check(restored > 0, f"the restart restored no partition from a snapshot: the kill came too "
                        f"early or too late?\n{summary_of(log)}")
    got = c.consume(dec, n)
    same_decisions(got, reference(c, src, n), "after kill -9 and restart")
    print(f"ok: killed a second after its first snapshot, restart restored {restored} partitions from snapshots and "
          f"replayed {replayed} records; {n} decisions equal an uninterrupted run's")


def failover(c):
    """Two processes in one group; one is killed: its partitions move, state is rebuilt."""
    n = 24000
    path, src, dec, pipeline = setup(c, "fo", n, seed=13, txn_timeout_ms=10000)
    producer = c.produce(src, path, rate=3000, wait=False)  # ~8 s of traffic
    a = c.start(pipeline, "--instance", "a", "--progress", idle="25s")
    b = c.start(pipeline, "--instance", "b", "--progress", idle="25s")
    time.sleep(4)
    c.kill_after_snapshot(b, "the second process")  # its partitions have state on the state topic
    producer.communicate(timeout=120)
    log = c.finish(a, timeout=240)
    rebalances = summary_count(log, " rebalances")
    restored = summary_count(log, " partitions from snapshots")
    check(rebalances >= 2, f"the survivor saw {rebalances} rebalance(s), expected the failover:\n{summary_of(log)}")
    check(restored > 0, f"the survivor restored no partition from a snapshot\n{summary_of(log)}")
    got = c.consume(dec, n)
    same_decisions(got, reference(c, src, n), "after failover")
    print(f"ok: one of two processes killed; the survivor saw {rebalances} rebalances and restored "
          f"{restored} partitions from snapshots; {n} decisions equal an uninterrupted run's")


def scale_out(c):
    """A second process joins mid-stream, then leaves: the first keeps the state of the
    partitions it holds through both rebalances (no snapshot read, nothing replayed for them);
    only the partitions that move are restored, and the decisions equal an uninterrupted run's."""
    n = 24000
    path, src, dec, pipeline = setup(c, "so", n, seed=14)
    producer = c.produce(src, path, rate=3000, wait=False)  # ~8 s of traffic
    a = c.start(pipeline, "--instance", "a", "--progress", idle="12s")
    c.await_progress(a, "snapshots [1-9]")  # a has state and committed work on every partition
    b = c.start(pipeline, "--instance", "b", "--progress", idle="3s")
    producer.communicate(timeout=120)
    log_b = c.finish(b)
    log_a = c.finish(a, timeout=240)
    rebalances = summary_count(log_a, " rebalances")
    kept = summary_count(log_a, " partitions kept their state through them")
    check(rebalances >= 3, f"the first process saw {rebalances} rebalance(s), expected its own join, the "
                           f"second's and its leaving:\n{summary_of(log_a)}")
    # 4 partitions over two members: a keeps half of them when b joins, and those again when b
    # leaves (b's come back restored from b's snapshots).
    check(kept >= PARTITIONS // 2, f"the first process kept {kept} partitions' state through the "
                                   f"rebalances, expected at least {PARTITIONS // 2}:\n{summary_of(log_a)}")
    check(summary_count(log_b, " partitions from snapshots") > 0,
          f"the second process restored none of the partitions it took from snapshots:\n{summary_of(log_b)}")
    got = c.consume(dec, n)
    same_decisions(got, reference(c, src, n), "after a process joined and left")
    print(f"ok: a second process joined and left; the first saw {rebalances} rebalances and kept {kept} "
          f"partitions' state through them, restored {summary_count(log_a, ' partitions from snapshots')} "
          f"from snapshots; {n} decisions equal an uninterrupted run's")


def broker_restart(c):
    """The broker stops mid-stream and comes back: the engine waits and loses nothing."""
    n = 20000
    path, src, dec, pipeline = setup(c, "br", n, seed=14)
    c.produce(src, path)
    p = c.start(pipeline, idle="20s")
    try:
        time.sleep(2)
        r = subprocess.run([c.broker, "stop", "--dir", c.dir], capture_output=True, timeout=90)
        check(r.returncode == 0, f"broker stop: {r.stderr.decode()}")
        time.sleep(3)
    finally:
        r = subprocess.run([c.broker, "start", "--dir", c.dir], capture_output=True, timeout=180)
    check(r.returncode == 0, f"broker restart: {r.stderr.decode()}")
    log = c.finish(p, timeout=240)
    check(p.returncode == 0, log[-2000:])
    got = c.consume(dec, n)
    same_decisions(got, reference(c, src, n), "across a broker restart")
    print(f"ok: broker stopped for 3 s mid-stream; {n} decisions, none lost or doubled\n{summary_of(log)}")


def state_changed(c):
    """A snapshot taken under another pipeline state is not used: the partition is replayed from
    its start, with a warning, and the decisions are those of an uninterrupted run of the new
    pipeline."""
    n = 8000
    path, src, dec, pipeline = setup(c, "sc", n, seed=15)
    producer = c.produce(src, path, rate=2000, wait=False)  # the first run lasts 2 s or more
    first = c.finish(c.start(pipeline, "--events", str(n // 2)))
    producer.communicate(timeout=120)
    check(summary_count(first, " state snapshots written") > 0,
          f"the first run wrote no snapshot\n{summary_of(first)}")
    with open(pipeline) as f:
        text = f.read()
    with open(pipeline, "w") as f:  # the dedup horizon is part of the state: snapshots no longer fit
        f.write(text.replace("  horizon: 1h ", "  horizon: 2h ", 1))
    log = c.finish(c.start(pipeline))
    check("taken under another pipeline state" in log, f"no warning about the snapshots:\n{log[-2000:]}")
    replayed = summary_count(log, " records replayed")
    check(summary_count(log, " partitions from snapshots") == 0 and replayed == n // 2,
          f"expected a replay of the {n // 2} committed records from the start\n{summary_of(log)}")
    got = c.consume(dec, n)
    want_out, want_dead = c.topic("ref-decisions"), c.topic("ref-dead", 1)
    ref = c.pipeline("scref", [src], want_out, want_dead, snapshots="off")
    with open(ref) as f:
        ref_text = f.read()
    with open(ref, "w") as f:
        f.write(ref_text.replace("  horizon: 1h ", "  horizon: 2h ", 1))
    c.finish(c.start(ref))
    same_decisions(got, c.consume(want_out, n), "after a pipeline change")
    print(f"ok: snapshots of the old pipeline passed over with a warning; {replayed} records "
          f"replayed; {n} decisions equal an uninterrupted run's of the new pipeline")


def at_least_once(c):
    """exactly_once: false, kill -9 mid-stream, restart: every event still has a decision (some
    twice: those decided after the last offset commit), the dead letters are there, and the
    restarted run's counters reconcile."""
    bad = ['not json at all']
    n = 24000
    path = generate(c, n, seed=16, bad=bad)
    src = c.topic("payments")
    dec, dead = c.topic("decisions"), c.topic("dead", 1)
    pipeline = c.pipeline("alo", [src], dec, dead, exactly_once=False)
    producer = c.produce(src, path, rate=4000, wait=False)  # ~6 s of traffic
    c.kill_after_snapshot(c.start(pipeline, "--progress", idle="5s"))
    out = os.path.join(c.tmp, "alo-out")
    p2 = c.start(pipeline, idle="5s", out=out)
    producer.communicate(timeout=120)
    log = c.finish(p2)
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    check(s["reconciled"] and s["read"] == s["decided"] + s["dead_lettered"] + s["duplicate"] + s["late"],
          f"the restarted run's counters do not reconcile: {json.dumps(s)[:400]}")
    check(s["kafka"]["commits"] > 0, f"no offset commit: {s['kafka']}")
    decisions = c.consume(dec, n, at_least=True)
    ids = {}
    for d in decisions:
        ids[d["event_id"]] = ids.get(d["event_id"], 0) + 1
    with open(path) as f:
        want = {json.loads(line)["event_id"] for line in f if line.startswith("{")}
    check(set(ids) == want, f"{len(want - set(ids))} events without a decision, {len(set(ids) - want)} unknown")
    twice = sum(1 for k in ids.values() if k > 1)
    check(max(ids.values()) <= 2, "an event decided more than twice: one kill repeats at most once")
    # Repeats are likely but not certain (decisions still queued in the producer at the kill
    # are lost with it and decided once, after the restart), so the mode is checked as vigil
    # states it.
    check("(at least once)" in log, f"the run did not say it was at least once:\n{log[:600]}")
    letters = c.consume(dead, len(bad), at_least=True)
    check(all(d["reason"] == "parse_error" for d in letters), f"dead letters: {letters}")
    print(f"ok: at least once, killed mid-stream and restarted: all {n} events decided, {twice} of them "
          f"twice (after the last offset commit), {len(letters)} dead letter(s)\n{summary_of(log)}")


SCENARIOS = {f.__name__: f for f in (exactly_once, kill_resume, failover, scale_out, broker_restart,
                                      state_changed, at_least_once)}


def main():
    vigil, name = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(vigil, tmp)
        try:
            SCENARIOS[name](c)
        except Failure as e:
            print(f"FAIL {name}: {e}", file=sys.stderr)
            return 1
        finally:
            for path in c.cleanup:
                if os.path.exists(path):
                    os.remove(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
