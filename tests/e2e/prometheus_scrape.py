#!/usr/bin/env python3
"""A real Prometheus server scrapes a running `vigil run` over loopback.

Usage: prometheus_scrape.py VIGIL [DASHBOARD_JSON]

Starts `vigil run` (generated input, paced so it lasts ~25 s, checkpoints every second) with
--listen 127.0.0.1:0, then Debian's `prometheus` binary on a free loopback port with a
generated config (scrape_interval 1s, storage in a temp dir) - never the package's system
service. Asserts through Prometheus's HTTP API that Vigil's series arrived with plausible
values, and, given the Grafana dashboard, that every one of its queries is valid PromQL that
Prometheus answers. Stops everything it started; bounded well under a minute.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

PIPELINE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "card-fraud.yaml")
DEADLINE = time.monotonic() + 50


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def values(base, expr):
    """{labels-as-tuple: float} of an instant vector query (empty on error)."""
    got = query(base, expr)
    if got.get("status") != "success":
        return {}
    return {tuple(sorted(r["metric"].items())): float(r["value"][1])
            for r in got["data"]["result"]}


def wait_for(what, fn, interval=0.25):
    while time.monotonic() < DEADLINE:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise Failure(f"timed out waiting for {what}")


def dashboard_exprs(path):
    with open(path) as f:
        dash = json.load(f)
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            yield panel["title"], t["expr"]


def event_time_span(path):
    """Seconds of event time between the first and last record of a generated file."""
    from datetime import datetime
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.startswith("{")]
    ts = [datetime.fromisoformat(json.loads(l)["ts"].replace("Z", "+00:00")).timestamp()
          for l in (lines[0], lines[-1])]
    return ts[1] - ts[0]


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    vigil = sys.argv[1]
    dashboard = sys.argv[2] if len(sys.argv) > 2 else None
    prometheus = shutil.which("prometheus")
    check(prometheus, "no prometheus binary: run scripts/setup (Debian package prometheus)")
    tmp = tempfile.mkdtemp(prefix="vigil-prom-")
    run_proc = prom = None
    try:
        inp = os.path.join(tmp, "g.jsonl")
        r = subprocess.run([vigil, "generate", "--events", "60000", "--seed", "3", "--out", inp],
                           capture_output=True, timeout=30)
        check(r.returncode == 0, r.stderr.decode())
        speed = f"{event_time_span(inp) / 25:.0f}x"  # the run lasts ~25 s: longer than the test needs
        run_proc = subprocess.Popen(
            [vigil, "run", "-c", PIPELINE, "--input", inp, "--out", os.path.join(tmp, "out"),
             "--quiet", "--speed", speed, "--checkpoint-interval", "1s",
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        line = run_proc.stderr.readline().decode()
        check("serving http://" in line, f"vigil announced no address: {line}")
        target = line.split("serving http://")[1].split()[0]

        port = free_port()
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: vigil\n    static_configs:\n"
                    f"      - targets: ['{target}']\n")
        prom_log = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=prom_log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def ready():
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return check(prom.poll() is None, "prometheus exited: " +
                             open(os.path.join(tmp, "prometheus.log")).read()[-2000:])
        wait_for("prometheus to be ready", ready)

        up = wait_for("the vigil target to be up",
                      lambda: values(base, 'up{job="vigil"} == 1'))
        check(len(up) == 1, f"up: {up}")
        # Two scrapes with reads in between: the counter moves.
        read1 = wait_for("events read", lambda: sum(values(base, "vigil_events_read_total").values()))
        read2 = wait_for("events read to grow",
                         lambda: (v := sum(values(base, "vigil_events_read_total").values())) > read1 and v)
        check(0 < read1 < read2 <= 60000, f"read {read1} then {read2}")
        decided = sum(values(base, "vigil_events_decided_total").values())
        check(0 < decided <= read2, f"decided {decided} of {read2}")
        lat = wait_for("a latency observation",
                       lambda: sum(values(base, "vigil_decision_latency_seconds_count").values()))
        check(lat > 0, f"latency count {lat}")
        inf = sum(values(base, 'vigil_decision_latency_seconds_bucket{le="+Inf"}').values())
        check(inf >= lat, f"+Inf bucket {inf} < count {lat}")
        p99 = wait_for("a latency p99", lambda: [v for v in values(
            base, "histogram_quantile(0.99, sum by (le) (rate("
                  "vigil_decision_latency_seconds_bucket[5s])))").values() if v == v])
        check(0 < p99[0] <= 10, f"p99 latency {p99[0]} s")
        queues = values(base, "vigil_queue_depth_batches")
        kinds = {dict(k).get("queue") for k in queues}
        check({"work", "done", "reorder"} <= kinds, f"queue depths: {queues}")
        check(all(v >= 0 for v in queues.values()), f"queue depths: {queues}")
        age = wait_for("a checkpoint", lambda: values(base, "vigil_checkpoint_age_seconds"))
        check(0 <= list(age.values())[0] < 10, f"checkpoint age: {age}")
        check(values(base, "vigil_state_entities > 0"), "no state entities")
        kinds = {dict(k).get("entity") for k in values(base, "vigil_entity_count > 0")}
        check({"card", "merchant"} <= kinds, f"entities by type: {kinds}")
        # One query, so both sides come from the same scrape.
        diff = values(base, "sum(vigil_entity_state_bytes) - sum(vigil_state_bytes)")
        check(list(diff.values()) == [0.0], f"state bytes by type - total: {diff}")

        if dashboard:
            for title, expr in dashboard_exprs(dashboard):
                expr = expr.replace("$__rate_interval", "5s").replace("$__interval", "5s")
                got = query(base, expr)
                check(got.get("status") == "success",
                      f"dashboard panel '{title}': Prometheus rejects {expr}: {got}")
        print(f"ok: prometheus scraped vigil at {target}: read {read2:.0f}, "
              f"p99 {p99[0] * 1000:.1f} ms, {len(queues)} queue series")
    finally:
        stop(prom)
        stop(run_proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
