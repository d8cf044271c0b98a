"""Torch's CPU threads: how OpenMP's threads wait (set by the CLI before torch loads) and --threads.

GENERATE_THREADS: generate and serve decode one small step at a time, and with the shipped model one
thread was the fastest or within 16% of it for generate and stream on the idle and the busy 2-core
machine, where two passive threads were 2.9x slower idle and two spinning ones 2.7x slower busy
(results/threads_policy_default_v2.json); training, with larger operations, keeps one thread per core.

OpenMP's threads spin between torch's many small parallel regions by default. On a 2-core machine
shared with other work, two spinning threads made generation, streaming and fine-tuning 2.3-32x
slower than one thread; with OMP_WAIT_POLICY=PASSIVE (a waiting thread sleeps) two threads were the
fastest setting in 3 of the 4 conditions measured and the only one that streamed ahead of real time
in all four; one thread won only on the lightly loaded machine with nothing added
(benchmarks/threads_policy.py, results/threads_policy*.json, docs/performance.md; the previous
default model). So the CLI sets PASSIVE (a Python program sets it itself, before it imports torch),
training keeps torch's thread count (one per core), and generate and serve use GENERATE_THREADS.
"""

from __future__ import annotations

import os

from ssmusic.errors import BadValue

WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")
GENERATE_THREADS = 1


def set_wait_policy() -> None:
    """PASSIVE unless the environment says otherwise. libgomp reads the variable once, when torch first
    loads: call this before anything imports torch."""
    os.environ.setdefault(*WAIT_POLICY)


def set_threads(threads: int) -> int:
    """--threads: 0 keeps torch's default (one per core); n >= 1 uses n. -> the threads torch uses."""
    import torch

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise BadValue("threads", "an integer >= 1 (0 = one per core)", threads)
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
