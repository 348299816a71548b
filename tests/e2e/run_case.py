#!/usr/bin/env python3
"""Runs one data-driven end-to-end case against the real vigil binary.

A case is a folder:
  case.test            '# name:' and '# description:' header lines, then
                       'run: ARGS' (vigil's arguments; $OUT is a fresh output folder and
                       $CASE the case folder), optional 'stdin: FILE', 'exit: N' (default 0)
  expected/NAME        every file here must equal $OUT/NAME byte for byte, except:
  expected/summary.json  only the keys it lists are compared (timings vary)
  expected/stderr      compared with vigil's stderr after replacing $CASE
  anything else        inputs and pipeline files the case uses

On a mismatch it prints a unified diff, so a reader sees what changed. `vigil run` and
`vigil demo` get `--listen none`: a case compares stderr exactly and binds no port.
"""
import difflib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def parse_case(path):
    spec = {"exit": 0, "stdin": None}
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            key, _, value = line.partition(":")
            spec[key.strip()] = value.strip()
    if "run" not in spec:
        sys.exit(f"{path}: no 'run:' line")
    spec["exit"] = int(spec["exit"])
    return spec


def diff(expected, actual, name):
    lines = difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                 f"expected/{name}", f"actual/{name}")
    return "".join(lines)


def main():
    vigil, case = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    spec = parse_case(os.path.join(case, "case.test"))
    out = tempfile.mkdtemp(prefix="vigil-e2e-")
    try:
        args = [a.replace("$OUT", out).replace("$CASE", case) for a in shlex.split(spec["run"])]
        if args and args[0] in ("run", "demo"):
            args += ["--listen", "none"]
        stdin = open(os.path.join(case, spec["stdin"]), "rb") if spec["stdin"] else subprocess.DEVNULL
        proc = subprocess.run([vigil] + args, cwd=case, stdin=stdin, capture_output=True,
                              timeout=100)
        stderr = proc.stderr.decode(errors="replace")
        stdout = proc.stdout.decode(errors="replace")
        failures = []
        if proc.returncode != spec["exit"]:
            failures.append(f"exit code {proc.returncode}, expected {spec['exit']}\n"
                            f"--- stderr\n{stderr}")
        expected_dir = os.path.join(case, "expected")
        for name in sorted(os.listdir(expected_dir)) if os.path.isdir(expected_dir) else []:
            with open(os.path.join(expected_dir, name), encoding="utf-8") as f:
                want = f.read()
            if name == "stderr":
                got = stderr.replace(case, "$CASE").replace(out, "$OUT")
            elif name == "stdout":
                got = stdout
            else:
                actual_path = os.path.join(out, name)
                if not os.path.exists(actual_path):
                    failures.append(f"missing output {name}")
                    continue
                with open(actual_path, encoding="utf-8") as f:
                    got = f.read()
            if name.endswith("summary.json"):
                want_keys, got_obj = json.loads(want), json.loads(got)
                for k, v in want_keys.items():
                    if got_obj.get(k) != v:
                        failures.append(f"summary.json: {k} = {got_obj.get(k)!r}, expected {v!r}")
                continue
            if got != want:
                failures.append(diff(want, got, name))
        if failures:
            print(f"FAIL {os.path.basename(case)}")
            print("\n".join(failures))
            return 1
        print(f"ok {os.path.basename(case)}")
        return 0
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
