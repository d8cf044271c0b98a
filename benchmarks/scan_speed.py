"""What a training step pays for Mamba2's chunked scan (ops.scan.ssd_chunked), the pure-PyTorch
path that GPU training without mamba-ssm runs (eagerly, or under torch.compile): forward + backward
at the papers' 2,588 frames with the small preset's layer sizes, by chunk size, and the bytes
autograd keeps for the backward (the activation memory it adds per layer).

    python benchmarks/scan_speed.py [--device cpu|cuda] [--threads 1] [--chunks 32,64,128,256]
                                    [--baseline OTHER_CHECKOUT] --out results/scan_speed.json

`--baseline` times another checkout's ssmusic/model/ops/scan.py beside this one's (e.g. the commit
before a change), in the same process. Every (version, chunk size) is timed in interleaved rounds,
so a burst of load on a shared machine hits each alike; reports medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import importlib.util

import torch
import torch.nn.functional as F

from ssmusic.io.atomic import write_json_atomic
from ssmusic.model.ops import scan

HEADS, HEADDIM, D_STATE, GROUPS = 16, 64, 64, 1  # the small preset's Mamba2 layer (d_model 512, expand 2)


def inputs(batch: int, length: int, device: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    made = [torch.randn(batch, length, HEADS, HEADDIM, generator=g),
            F.softplus(torch.randn(batch, length, HEADS, generator=g) - 3),  # dt as Mamba2 makes it
            -torch.exp(torch.rand(HEADS, generator=g) * 2.7),  # A = -exp(A_log), A_log ~ log U(1, 16)
            torch.randn(batch, length, GROUPS, D_STATE, generator=g),
            torch.randn(batch, length, GROUPS, D_STATE, generator=g), torch.ones(HEADS)]
    return [t.to(device).requires_grad_() for t in made]


def saved_bytes(fn) -> int:
    """Bytes of the distinct tensors autograd saves for the backward while `fn` runs."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        if t.device.type != "meta":
            seen[(t.untyped_storage().data_ptr(), t.device)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def load_scan(checkout: str):
    """ssd_chunked from another checkout's scan.py (it imports only torch)."""
    path = Path(checkout) / "ssmusic" / "model" / "ops" / "scan.py"
    spec = importlib.util.spec_from_file_location("baseline_scan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ssd_chunked


def measure(versions: dict, chunks: list[int], batch: int, length: int, rounds: int, device: str) -> dict:
    x, dt, A, B, C, D = inputs(batch, length, device)
    cases = [(name, chunk) for name in versions for chunk in chunks]

    def forward(case):
        return versions[case[0]](x, dt, A, B, C, case[1], D=D)

    def train(case):
        y, state = forward(case)
        (y.square().mean() + state.square().mean()).backward()

    times = {case: {"forward_s": [], "train_s": []} for case in cases}
    for case in cases:  # warm-up (and, on CUDA, kernel and allocator set-up)
        train(case)
    for _ in range(rounds):
        for case in cases:
            with torch.no_grad():
                times[case]["forward_s"].append(timed(lambda: forward(case), device))
            times[case]["train_s"].append(timed(lambda: train(case), device))
    result: dict = {name: {} for name in versions}
    for (name, chunk), found in times.items():
        train_s = statistics.median(found["train_s"])
        result[name][str(chunk)] = {"forward_ms": round(1000 * statistics.median(found["forward_s"]), 2),
                                    "train_ms": round(1000 * train_s, 2),
                                    "train_tokens_per_s": round(batch * length / train_s, 1),
                                    "saved_mb": round(saved_bytes(lambda: forward((name, chunk))) / 1e6, 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--length", type=int, default=2588)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--chunks", default="32,64,128,256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=None, metavar="CHECKOUT", help="also time this checkout's scan")
    parser.add_argument("--out", default="results/scan_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    chunks = [int(c) for c in args.chunks.split(",")]

    def commit(directory) -> str:
        return subprocess.run(["git", "-C", str(directory), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()

    versions = {f"current ({commit(Path(scan.__file__).parent)})": scan.ssd_chunked}
    if args.baseline:
        versions[f"baseline ({commit(args.baseline)})"] = load_scan(args.baseline)
    results = {"command": "python " + " ".join(sys.argv), "device": args.device, "threads": args.threads,
               "length": args.length, "batch": args.batch, "heads": HEADS, "headdim": HEADDIM, "d_state": D_STATE,
               "groups": GROUPS, "rounds": args.rounds, "torch": torch.__version__,
               "by_version": measure(versions, chunks, args.batch, args.length, args.rounds, args.device)}
    if args.device == "cuda":
        results["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps(results["by_version"], indent=1))
    write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
