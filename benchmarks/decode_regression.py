"""The small preset's one-prompt decode step (its CFG pair) at several commits, 1 and 2 threads, with
OpenMP's default wait policy and with OMP_WAIT_POLICY=PASSIVE: how the 2-thread regression was found.

    python benchmarks/decode_regression.py [--commits 9985d52,3f5be9b~1,3f5be9b,aa47fcf,HEAD] [--rounds 3]
        [--out results/decode_regression.json]

Each commit is checked out into a temporary git worktree (removed afterwards) and timed in fresh
processes that import that checkout: the step is the bench's own (`decode("simba", "small", 1000, 20)`:
random weights, position 1000, median ms of 20 steps after 3 warm-up steps), wherever the commit
keeps it. Interleaved rounds: each round times every (commit, threads, policy) cell once. The
machine's 1-minute load average is recorded beside each timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMER = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
try:
    from ssmusic.experiments.bench.ours import decode
except ImportError:
    try:
        from ssmusic.bench.ours import decode
    except ImportError:
        from ssmusic.bench import decode
print("RESULT " + json.dumps(decode("simba", "small", 1000, 20)["ms_per_step"]))
"""


def time_step(checkout: Path, threads: int, policy: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(checkout)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run([sys.executable, "-c", TIMER, str(threads)], cwd=checkout, env=env, capture_output=True,
                          text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{checkout.name}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", default="9985d52,3f5be9b~1,3f5be9b,aa47fcf,HEAD")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policies", default="default,PASSIVE")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    commits = args.commits.split(",")
    resolved = {c: subprocess.run(["git", "rev-parse", "--short", c], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip() for c in commits}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        checkouts = {}
        for commit in commits:
            checkouts[commit] = Path(tmp) / resolved[commit]
            subprocess.run(["git", "worktree", "add", "--detach", str(checkouts[commit]), resolved[commit]], cwd=ROOT,
                           check=True, capture_output=True)
        try:
            for round_index in range(args.rounds):
                for commit in commits:
                    for threads in (1, 2):
                        for policy in args.policies.split(","):
                            load = os.getloadavg()[0]
                            ms = time_step(checkouts[commit], threads, policy)
                            runs.append({"round": round_index, "commit": commit, "sha": resolved[commit],
                                         "threads": threads, "policy": policy, "ms": round(ms, 3), "load_1min": load})
                            print(json.dumps(runs[-1]), flush=True)
        finally:
            for path in checkouts.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
    cells = {}
    for run in runs:
        key = f"{run['commit']} {run['threads']}t {run['policy']}"
        values = [r["ms"] for r in runs if (r["commit"], r["threads"], r["policy"]) ==
                  (run["commit"], run["threads"], run["policy"])]
        cells[key] = {"commit": run["commit"], "sha": run["sha"], "threads": run["threads"], "policy": run["policy"],
                      "n": len(values), "median_ms": statistics.median(values), "min_ms": min(values),
                      "max_ms": max(values)}
    lines = ["| commit | threads | wait policy | ms per step, median (min-max) |", "|---|---|---|---|"]
    lines += [f"| {c['commit']} ({c['sha']}) | {c['threads']} | {c['policy']} | {c['median_ms']:.1f} "
              f"({c['min_ms']:.1f}-{c['max_ms']:.1f}) |" for c in cells.values()]
    print("\n".join(lines))
    if args.out:
        sys.path.insert(0, str(ROOT))
        from ssmusic.io.atomic import write_json_atomic

        write_json_atomic(args.out, {"command": "python " + " ".join(sys.argv), "cpus": os.cpu_count(),
                                     "cells": cells, "runs": runs, "table": "\n".join(lines)})


if __name__ == "__main__":
    main()
