"""What every bench measurement shares: the reference audio sizes, device sync, peak memory and
the machine's matmul throughput."""

from __future__ import annotations

import time
from pathlib import Path

import torch

DAC44K_FRAME_RATE = 44100 / 512  # 86.13 frames/s
DAC44K_FRAMES_30S = 2588  # 30 s of DAC 44.1 kHz tokens
POSITIONS = (100, 1000, 2588, 10000, 25000)


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(device: str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
    a = torch.randn(2048, 2048, device=device, dtype=dtype)
    b = torch.randn(2048, 2048, device=device, dtype=dtype)
    a @ b
    sync(device)
    started = time.perf_counter()
    for _ in range(5):
        a @ b
    sync(device)
    return {"gflops": 5 * 2 * 2048 ** 3 / (time.perf_counter() - started) / 1e9}
