"""Few-row products of a decode step, fp32 on CPU: `F.linear` against `W @ x.T` (what DecodeLinear uses).

    python benchmarks/linear_rows.py [--threads 2] [--out results/linear_rows.json]

For each weight shape of the `small` SiMBA (Mamba2 in_proj/out_proj, MLP fc1/fc2), 24 distinct weights
(more than the caches hold, as in a real step) are multiplied by a [rows, in] batch through
`F.linear`, through `W @ x.T`, and through our DecodeLinear. Prints microseconds per product and the
weight bytes streamed per second.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from ssmusic.io.atomic import write_json_atomic
from ssmusic.model.layers import DecodeLinear

SHAPES = ((2192, 512), (512, 1024), (1024, 512), (512, 1024))


def per_call_us(fn, weights: list, repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats / len(weights) * 1e6


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    rows_out = []
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("| weight [out, in] | rows | F.linear us | W @ x.T us | ssmusic Linear us | Linear GB/s |")
    print("|---|---|---|---|---|---|")
    for out_features, in_features in sorted(set(SHAPES)):
        layers = [DecodeLinear(in_features, out_features, bias=False) for _ in range(24)]
        megabytes = out_features * in_features * 4 / 1e6
        for rows in (1, 2, 4, 8, 16, 32):
            x = torch.randn(rows, in_features)
            plain = per_call_us(lambda: [F.linear(x, m.weight) for m in layers], layers)
            transposed = per_call_us(lambda: [m.weight @ x.T for m in layers], layers)
            ours = per_call_us(lambda: [m(x) for m in layers], layers)
            print(f"| {out_features} x {in_features} | {rows} | {plain:.0f} | {transposed:.0f} | {ours:.0f} | "
                  f"{megabytes / ours * 1e3:.1f} |")
            rows_out.append({"weight": [out_features, in_features], "rows": rows, "f_linear_us": plain,
                             "w_at_xt_us": transposed, "few_row_linear_us": ours,
                             "few_row_linear_gbps": megabytes / ours * 1e3})
    if args.out:
        write_json_atomic(args.out, {"command": "python " + " ".join(sys.argv), "threads": args.threads,
                                     "torch": torch.__version__, "rows": rows_out})


if __name__ == "__main__":
    main()
