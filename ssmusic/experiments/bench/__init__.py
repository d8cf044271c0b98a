"""`ssmusic bench`: decode and training speed, ours beside peers, printed as tables + JSON.

    floor.py    the decode step against its weight-streaming floor, batches against the matmul peak
    ours.py     our model: decode step, the released loop, end to end, training, FLOPs
    peers.py    transformers' MusicGen decoder and Mamba2 at our size, DAC decoding
    runner.py   each measurement in its own process; the full set; the paper-size comparison
    report.py   the Markdown tables

Every measurement runs in a fresh subprocess (so its peak resident memory is its own) and reports
medians of timed repetitions after warm-up. Timings are wall-clock on whatever machine runs this;
compare ratios within one run, not numbers across machines.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ssmusic.checks import check_device, check_writable
from ssmusic.io.atomic import write_json_atomic, write_text_atomic
from ssmusic.experiments.bench.report import tables
from ssmusic.experiments.bench.runner import POSITIONS, decode_floor_tables, paper_size, run_all

__all__ = ["paper_size", "run", "run_all", "tables"]


def run(args) -> int:
    check_device(args.device)  # both before minutes of timing
    if args.out:
        check_writable([args.out, Path(args.out).with_suffix(".md")], flag="--out")
    positions = tuple(int(p) for p in args.positions.split(",")) if args.positions else POSITIONS
    if args.quick:
        positions = positions if args.positions else (16, 64)
    threads = args.threads or torch.get_num_threads()
    if args.decode_floor:
        results = {"preset": args.preset if not args.quick else "tiny", "device": args.device, "threads": threads,
                   **decode_floor_tables(args.preset if not args.quick else "tiny",
                                         args.steps if not args.quick else 3, threads, args.device, args.quick,
                                         compile_step=not args.no_compile)}
    elif args.paper_size:
        results = {"preset": "paper", "device": args.device, "threads": threads, "matmul": {}, "decode": {},
                   "paper_loop": {}, "peers": {}, "training": {}, "end_to_end": {},
                   "paper_size": paper_size(threads, args.device)}
    else:
        results = run_all(args.preset if not args.quick else "tiny", positions,
                          args.steps if not args.quick else 3, args.threads, args.device, args.quick,
                          compile_step=not args.no_compile)
    text = tables(results)
    print(text)
    if args.out:
        write_json_atomic(args.out, results)
        write_text_atomic(Path(args.out).with_suffix(".md"), text + "\n")
    return 0
