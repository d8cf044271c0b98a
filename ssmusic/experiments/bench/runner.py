"""Running the bench: each measurement in a fresh process (its peak memory is its own), the
tables' worth of measurements, and the paper-size comparison."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import sys
import time
from functools import partial

import torch

from ssmusic.experiments.bench import floor, ours, peers
from ssmusic.experiments.bench.timing import DAC44K_FRAME_RATE, DAC44K_FRAMES_30S, matmul_gflops, peak_mb

POSITIONS = (100, 1000, 2588, 10000, 25000)
MEASUREMENTS = {"decode": ours.decode, "released_loop": ours.released_loop, "end_to_end": ours.end_to_end,
                "training": ours.training, "musicgen": peers.musicgen, "mamba2_peer": peers.mamba2_peer,
                "dac_decode": peers.dac_decode, "matmul_gflops": matmul_gflops,
                "decode_floor": floor.decode_floor, "batch_throughput": floor.batch_throughput,
                "compile_start": floor.compile_start,
                "default_model_agreement": floor.default_model_agreement}


def decode_floor_tables(preset: str, steps: int, threads: int, device: str, quick: bool = False,
                        progress: bool = True, compile_step: bool = True) -> dict:
    """The floor, the one-prompt step per weight type, the batch throughput table, and how far the
    shipped default model's logits move with bf16 / int8 weights: each in its own process. Eager and
    compiled steps (ssmusic.model.compiled, its cache in the default directory); `quick` skips the compiled
    ones (a compile takes tens of seconds) and the compile's cold and warm start, as does
    `compile_step=False`."""
    run = partial(measure, isolate=not quick)
    say = print if progress else (lambda *a, **k: None)
    compiled = compile_step and not quick
    say("decode floor: weight streaming vs the one-prompt step (float32, bfloat16, int8), eager"
        + (" and compiled" if compiled else ""), flush=True)
    out = {"floor": run("decode_floor", threads, preset=preset, steps=steps, device=device,
                        rounds=1 if quick else 3, compiled=compiled)}
    say("batch throughput: 1, 4, 16, 64 prompts vs the matmul peak", flush=True)
    out["batch"] = run("batch_throughput", threads, preset=preset, steps=steps, device=device,
                       prompts=(1, 4) if quick else (1, 4, 16, 64), compiled=compiled)
    if compiled:
        say("compiled step: a fresh process with an empty compile cache, then another with it filled", flush=True)
        with tempfile.TemporaryDirectory() as cache:
            out["compile_start"] = {kind: run("compile_start", threads, preset=preset, cache=cache, device=device)
                                    for kind in ("cold", "warm")}
    say("logits of the default model with bf16 / int8 weights vs float32", flush=True)
    out["agreement"] = run("default_model_agreement", threads, seconds=1.0 if quick else 4.0,
                           prompts=2 if quick else 4)
    if device == "cpu":
        out["threads_table"] = threads_table(preset, steps, device, quick, progress)
    return out


THREAD_COUNTS = (1, 2)


def threads_table(preset: str, steps: int, device: str, quick: bool = False, progress: bool = True) -> dict:
    """The one-prompt decode step (SiMBA, position 1000) and training (SiMBA, batch 1) at 1 and 2 threads,
    whatever --threads the other tables use: a second thread that makes things slower is a regression
    (one went unnoticed while every table ran at one thread). The OpenMP wait policy is recorded: the
    CLI sets PASSIVE (ssmusic.threads)."""
    run = partial(measure, isolate=not quick)
    if progress:
        print(f"threads: the decode step and training at {' and '.join(map(str, THREAD_COUNTS))} threads", flush=True)
    rows = {}
    for threads in THREAD_COUNTS:
        rows[str(threads)] = {
            "decode": run("decode", threads, backbone="simba", preset=preset, position=1000, steps=steps, device=device),
            "training": run("training", threads, backbone="simba", preset=preset, seq_len=128 if quick else 1024,
                            repeats=1 if quick else 2, device=device)}
    return {"wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (spin, then sleep)"), "rows": rows}


def measure(name: str, threads: int, isolate: bool = True, **kwargs) -> dict:
    """Run one measurement in a fresh Python process; adds its peak resident memory (MB).
    `isolate=False` runs it here (fast smoke tests; peak memory is then this process's)."""
    if not isolate:
        before = torch.get_num_threads()
        torch.set_num_threads(threads or before)
        try:
            return {**MEASUREMENTS[name](**kwargs), "peak_mb": peak_mb()}
        finally:
            torch.set_num_threads(before)
    code = ("import json, sys, torch; from ssmusic.experiments.bench import runner, timing; "
            f"torch.set_num_threads({threads}); "
            f"r = runner.MEASUREMENTS[{name!r}](**json.loads(sys.argv[1])); r['peak_mb'] = timing.peak_mb(); "
            "print('RESULT ' + json.dumps(r))")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "process_s": round(time.perf_counter() - started, 1)}
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def run_all(preset: str = "small", positions=POSITIONS, steps: int = 20, threads: int = 0, device: str = "cpu",
            quick: bool = False, progress: bool = True, compile_step: bool = True) -> dict:
    """Every table of `ssmusic bench`. `quick` shrinks everything for smoke tests."""
    threads = threads or torch.get_num_threads()
    run = partial(measure, isolate=not quick)

    say = print if progress else (lambda *a, **k: None)
    results: dict = {"preset": preset, "device": device, "threads": threads, "steps": steps, "decode": {},
                     "paper_loop": {}, "training": {}, "peers": {}, "end_to_end": {}}
    results["matmul"] = run("matmul_gflops", threads, device=device)
    results.update(decode_floor_tables(preset, steps, threads, device, quick, progress, compile_step))
    for backbone in ("simba", "mamba", "transformer"):
        for position in positions:
            say(f"decode {backbone} @ {position}", flush=True)
            results["decode"][f"{backbone}@{position}"] = {
                **run("decode", threads, backbone=backbone, preset=preset, position=position, steps=steps,
                          device=device), "flops": ours.decode_flops(backbone, preset, position)}
    for position in [p for p in positions if p <= DAC44K_FRAMES_30S]:
        say(f"released loop @ {position}", flush=True)
        results["paper_loop"][str(position)] = run("released_loop", threads, preset=preset, position=position,
                                                       repeats=1 if quick else 3, device=device)
    frames = 120 if quick else DAC44K_FRAMES_30S
    say(f"peers: MusicGen decoder and transformers' Mamba2 generating {frames} tokens", flush=True)
    results["peers"]["musicgen"] = run("musicgen", threads, preset=preset, new_tokens=frames, device=device)
    results["peers"]["mamba2"] = run("mamba2_peer", threads, preset=preset, new_tokens=min(frames, 300),
                                         device=device)
    say(f"end to end: SiMBA generating {frames} tokens with CFG; DAC 44.1 kHz decoding them", flush=True)
    results["end_to_end"]["simba"] = run("end_to_end", threads, preset=preset, frames=frames, device=device)
    results["end_to_end"]["dac_decode"] = run("dac_decode", threads, seconds=frames / DAC44K_FRAME_RATE,
                                                  device=device)
    for backbone in ("simba", "mamba", "transformer"):
        for seq_len in ((128,) if quick else (1024, 2588)):
            say(f"training {backbone} @ {seq_len}", flush=True)
            results["training"][f"{backbone}@{seq_len}"] = run(
                "training", threads, backbone=backbone, preset=preset, seq_len=seq_len, repeats=1 if quick else 2,
                device=device)
    return results


def paper_size(threads: int, device: str = "cpu", positions=(100, 1000, DAC44K_FRAMES_30S), steps: int = 10,
               progress: bool = True, preset: str = "paper", isolate: bool = True) -> dict:
    """The released model's size (`paper` preset, 281M): our recurrent step against the released
    generation loop, which re-runs the whole sequence (60 text tokens + codes) for every token, and
    what that means for 30 s of audio. Totals are integrated from the measured positions (both costs
    are linear in position between them), not timed end to end: the released loop would take hours."""
    say = print if progress else (lambda *a, **k: None)
    out: dict = {"decode": {}, "paper_loop": {}}
    for position in positions:
        say(f"paper size: recurrent SiMBA @ {position}", flush=True)
        out["decode"][str(position)] = measure("decode", threads, isolate, backbone="simba", preset=preset,
                                               position=position, steps=steps, device=device)
        say(f"paper size: released loop @ {position}", flush=True)
        out["paper_loop"][str(position)] = measure("released_loop", threads, isolate, preset=preset,
                                                   position=position + 60, repeats=1, device=device)
    total = positions[-1]

    def integrate(kind: str) -> float:
        xs = [0, *positions]
        ys = [out[kind][str(positions[0])].get("ms_per_step", float("nan")),
              *(out[kind][str(p)].get("ms_per_step", float("nan")) for p in positions)]
        return sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1)) / 1000

    out["total_s"] = {"recurrent": integrate("decode"), "paper_loop": integrate("paper_loop"), "frames": total}
    return out
