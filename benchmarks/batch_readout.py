"""Before/after for the batch table: the PyTorch SSM step's read-out at many rows.

    python benchmarks/batch_readout.py [--threads 1] [--steps 10] --out results/batch_readout.json

Runs `ssmusic.experiments.bench.floor.batch_throughput` (small SiMBA, float32 weights, 1/4/16/64 prompts with
CFG) twice in one process: first with the multiply-sum read-out at every batch size (the code before
issue 18: `ssd_step` with BATCHED_READOUT_ROWS set beyond any batch), then as shipped (a batched
matmul above 16 rows); and once more as shipped with bf16 weights. Nothing else differs. The one-pass
C step (ops.cpu_step), which replaces this read-out where a C compiler exists, is switched off here
(SSMUSIC_CPU_KERNEL=0): this measures the PyTorch step, the reference and the fallback.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ["SSMUSIC_CPU_KERNEL"] = "0"  # before ssmusic loads the C step

import torch

from ssmusic.io.atomic import write_json_atomic
from ssmusic.experiments.bench import floor
from ssmusic.model.ops import scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--out", default="results/batch_readout.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shipped = scan.BATCHED_READOUT_ROWS
    results = {"command": f"python benchmarks/batch_readout.py --threads {args.threads} --steps {args.steps} "
                          f"--out {args.out}", "threads": args.threads, "preset": args.preset}
    scan.BATCHED_READOUT_ROWS = 1 << 30
    results["before"] = floor.batch_throughput(args.preset, args.steps, dtypes=("float32",))
    scan.BATCHED_READOUT_ROWS = shipped
    results["after"] = floor.batch_throughput(args.preset, args.steps, dtypes=("float32", "bfloat16"))
    print("| weights | prompts | before tokens/s (% of peak) | after tokens/s (% of peak) |")
    print("|---|---|---|---|")
    for key, after in results["after"]["rows"].items():
        before = results["before"]["rows"].get(key)
        cell = f"{before['tokens_per_s']:.0f} ({before['pct_of_peak']:.0f}%)" if before else "-"
        print(f"| {after['dtype']} | {after['prompts']} | {cell} | {after['tokens_per_s']:.0f} "
              f"({after['pct_of_peak']:.0f}%) |")
    write_json_atomic(args.out, results)
    print(json.dumps({k: results[k]["matmul_gflops"] for k in ("before", "after")}))


if __name__ == "__main__":
    main()
