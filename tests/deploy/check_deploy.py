#!/usr/bin/env python3
"""Checks deploy/: the Grafana dashboard is valid JSON whose every query names only metrics
that Vigil's /metrics emits, and deploy/prometheus.yml is a config Prometheus accepts.

Usage: check_deploy.py REPO_ROOT. The emitted families are read from the renderer,
src/vigil/api/prometheus_text.cc (Metric(out, "name", ...) and Histogram(out, "name", ...)),
so a renamed metric breaks this check rather than a dashboard in production.
"""
import json
import os
import re
import shutil
import subprocess
import sys


def fail(what):
    print(f"FAIL: {what}", file=sys.stderr)
    sys.exit(1)


def emitted_families(root):
    with open(os.path.join(root, "src", "vigil", "api", "prometheus_text.cc")) as f:
        text = f.read()
    fams = {}
    for m in re.finditer(r'Metric\(\s*out,\s*"(vigil_\w+)",\s*"(\w+)"', text):
        fams[m.group(1)] = m.group(2)
    for m in re.finditer(r'Histogram\(\s*out,\s*"(vigil_\w+)"', text):
        fams[m.group(1)] = "histogram"
    if len(fams) < 20:
        fail(f"found only {len(fams)} metric families in prometheus_text.cc: has it changed shape?")
    return fams


def series_names(fams):
    names = set()
    for name, kind in fams.items():
        names.add(name)
        if kind == "histogram":
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
    return names


def main():
    root = sys.argv[1]
    fams = emitted_families(root)
    names = series_names(fams)
    path = os.path.join(root, "deploy", "grafana", "vigil-dashboard.json")
    try:
        with open(path) as f:
            dash = json.load(f)
    except ValueError as e:
        fail(f"{path}: not valid JSON: {e}")
    panels = dash.get("panels")
    if not panels:
        fail(f"{path}: no panels")
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        fail(f"{path}: panel ids repeat: {ids}")
    used = set()
    for p in panels:
        targets = p.get("targets") or fail(f"panel '{p.get('title')}' has no queries")
        for t in targets:
            expr = t.get("expr") or fail(f"panel '{p.get('title')}': a target has no expr")
            metrics = set(re.findall(r"\bvigil_\w+", expr))
            if not metrics:
                fail(f"panel '{p['title']}': '{expr}' names no vigil_ metric")
            for m in metrics:
                if m not in names:
                    fail(f"panel '{p['title']}': '{m}' is not a metric /metrics emits "
                         f"(known: {sorted(fams)})")
                if m.endswith("_total") and f"rate({m}" not in expr and f"increase({m}" not in expr:
                    fail(f"panel '{p['title']}': counter {m} is plotted raw; use rate()")
            used |= metrics
    # The list: each of these must be on the dashboard.
    for want in ("vigil_events_read_total", "vigil_decisions_total", "vigil_rule_hits_total",
                 "vigil_model_score_psi", "vigil_decision_latency_seconds_bucket",
                 "vigil_queue_depth_batches", "vigil_state_entities", "vigil_state_bytes",
                 "vigil_kafka_consumer_lag_records", "vigil_kafka_last_commit_duration_seconds"):
        if want not in used:
            fail(f"the dashboard does not show {want}")

    promtool = shutil.which("promtool")
    if not promtool:
        fail("no promtool: run scripts/setup (Debian package prometheus)")
    cfg = os.path.join(root, "deploy", "prometheus.yml")
    r = subprocess.run([promtool, "check", "config", cfg], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        fail(f"promtool rejects {cfg}: {r.stdout}{r.stderr}")
    print(f"ok: {len(panels)} panels, {len(used)} metrics, all emitted; {cfg} valid")


if __name__ == "__main__":
    main()
