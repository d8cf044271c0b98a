"""Which thread setting to default to: generate, stream and fine-tune at 1 and 2 torch threads, with
OpenMP's default wait policy and with OMP_WAIT_POLICY=PASSIVE, on this machine as it is ("idle": no
load added) and with one busy process added (a Python loop spinning on one core).

    python benchmarks/threads_policy.py [--rounds 3] [--seconds 5] [--out results/threads_policy.json]

Every measurement runs in a fresh process (the wait policy is read when OpenMP loads, before any torch
call), in interleaved rounds: each round measures every (load, threads, policy) cell once, so slow
minutes of a shared machine fall on every cell alike. Per cell, over the rounds: median, min and max of

    step_ms       the small preset's one-prompt decode step with its CFG pair (random weights, position
                  1000: ssmusic.experiments.bench.ours.decode, the step the bench tables time)
    generate_s    TextToMusic.generate of the shipped model, one prompt, --seconds of audio (after a
                  0.5 s warm-up generation), codec included
    stream_rtf    TextToMusic.stream of the same: seconds of compute per second of audio, and
    first_audio_s the time to its first chunk (0.5 s chunks)
    finetune_s    one fine-tuning step of the shipped model: a batch of 8 clips of 10 s (431 frames), loss,
                  backward and AdamW step, median of 3 after a warm-up step

The machine's 1-minute load average is recorded before each measurement: on a shared machine "idle"
means nothing added by this script, not an empty machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

METRICS = ("step_ms", "generate_s", "stream_rtf", "first_audio_s", "finetune_s")
POLICIES = ("default", "PASSIVE")


def child(threads: int, seconds: float) -> dict:
    """One process: every workload at `threads` threads (the wait policy came with the environment)."""
    import torch

    torch.set_num_threads(threads)
    from ssmusic.experiments.bench.ours import decode
    from ssmusic.model.lm import MusicLM
    from ssmusic.pipeline import DEFAULT_MODEL_DIR, TextToMusic

    out = {"step_ms": decode("simba", "small", 1000, 20)["ms_per_step"]}
    model = TextToMusic.from_pretrained()
    model.generate(["a calm piano piece"], seconds=0.5, seed=0)
    started = time.perf_counter()
    model.generate(["a calm piano piece"], seconds=seconds, seed=0)
    out["generate_s"] = time.perf_counter() - started
    started, first = time.perf_counter(), None
    for chunk in model.stream(["a calm piano piece"], seconds=seconds, chunk_seconds=0.5, seed=0):
        if first is None and chunk.audio.shape[-1]:
            first = time.perf_counter() - started
    out["stream_rtf"], out["first_audio_s"] = (time.perf_counter() - started) / seconds, first
    lm = MusicLM.from_pretrained(DEFAULT_MODEL_DIR).train()
    optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, lm.config.card, (8, lm.config.n_codebooks, 431), generator=generator)
    text = torch.randn(8, 16, lm.config.text_dim, generator=generator)
    times = []
    for _ in range(4):
        started = time.perf_counter()
        lm.loss(codes, text, None).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    out["finetune_s"] = statistics.median(times[1:])
    return out


def measure(threads: int, policy: str, seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(threads), "--seconds", str(seconds)],
                          capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "load_1min": load, "process_s": round(time.perf_counter() - started, 1)}
    raise RuntimeError(f"threads {threads}, {policy}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")


def summarise(runs: list[dict]) -> dict:
    cells: dict[str, dict] = {}
    for run in runs:
        key = f"{run['load']}/{run['threads']}t/{run['policy']}"
        cell = cells.setdefault(key, {"load": run["load"], "threads": run["threads"], "policy": run["policy"]})
        for metric in (*METRICS, "load_1min"):
            values = [r[metric] for r in runs if (r["load"], r["threads"], r["policy"]) ==
                      (run["load"], run["threads"], run["policy"]) and r.get(metric) is not None]
            cell[metric] = {"n": len(values), "median": round(statistics.median(values), 4),
                            "min": round(min(values), 4), "max": round(max(values), 4)}
    return cells


def table(cells: dict) -> str:
    lines = ["| load | threads | wait policy | step ms | generate s | stream RTF | first audio s | fine-tune s/step |"
             " machine load |", "|---|---|---|---|---|---|---|---|---|"]
    for cell in cells.values():
        values = [f"{cell[m]['median']:.3g} ({cell[m]['min']:.3g}-{cell[m]['max']:.3g})" for m in METRICS]
        lines.append(f"| {cell['load']} | {cell['threads']} | {cell['policy']} | " + " | ".join(values)
                     + f" | {cell['load_1min']['median']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="audio generated and streamed (default 5)")
    parser.add_argument("--loads", default="idle,busy", help="comma list of idle,busy (default both)")
    parser.add_argument("--out", default=None, help="results JSON")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.seconds)))
        return
    from ssmusic.io.atomic import write_json_atomic

    runs = []
    for round_index in range(args.rounds):
        for load in args.loads.split(","):
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
            try:
                for threads in (1, 2):
                    for policy in POLICIES:
                        result = measure(threads, policy, args.seconds)
                        runs.append({"round": round_index, "load": load, "threads": threads, "policy": policy,
                                     **result})
                        print(json.dumps(runs[-1]), flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    cells = summarise(runs)
    print(table(cells))
    if args.out:
        import torch

        write_json_atomic(args.out, {
            "command": "python " + " ".join(sys.argv), "cpus": os.cpu_count(), "torch": torch.__version__,
            "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name")), None),
            "seconds": args.seconds, "rounds": args.rounds, "cells": cells, "runs": runs, "table": table(cells)})


if __name__ == "__main__":
    main()
