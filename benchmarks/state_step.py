"""The SSM state update of one decode step, per layer, at many rows: the PyTorch step against the
one-pass C step (ops.cpu_step), float32 and bfloat16 state, and the C step's portable loops.

    python benchmarks/state_step.py [--rows 128] [--threads 1] --out results/state_step.json

Shapes are the small preset's (16 heads x 64 x 64 per row); 12 states, one per layer, are updated
in turn as in a decode step, so the states come from memory, not cache. Reports the median ms per
layer over --repeats passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from ssmusic.io.atomic import write_json_atomic
from ssmusic.model.ops import cpu_step
from ssmusic.model.ops.scan import ssd_step

HEADS, HEADDIM, D_STATE, LAYERS = 16, 64, 64, 12


def per_layer_ms(step, states, inputs, repeats: int) -> float:
    step(states[0], *inputs)  # warm up (and build or load the library)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for state in states:
            step(state, *inputs)
        times.append((time.perf_counter() - started) / len(states))
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=128, help="rows (64 prompts with CFG: 128)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="results/state_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not cpu_step.available():
        sys.exit("no C compiler: the one-pass step is not available here")
    g = torch.Generator().manual_seed(0)
    rows = args.rows
    inputs = (torch.randn(rows, HEADS, HEADDIM, generator=g), torch.rand(rows, HEADS, generator=g),
              -torch.rand(HEADS, generator=g), torch.randn(rows, 1, D_STATE, generator=g),
              torch.randn(rows, 1, D_STATE, generator=g), torch.randn(HEADS, generator=g))
    portable = cpu_step.load(cpu_step.build(cpu_step._compiler(), ("-DSSD_STEP_GENERIC",)))
    results = {"command": "python " + " ".join(sys.argv), "rows": rows, "threads": args.threads,
               "state_mb_per_layer": {}, "ms_per_layer": {}}
    with torch.no_grad():
        for dtype in (torch.float32, torch.bfloat16):
            name = str(dtype).removeprefix("torch.")
            states = [torch.randn(rows, HEADS, HEADDIM, D_STATE, generator=g).to(dtype) for _ in range(LAYERS)]
            results["state_mb_per_layer"][name] = states[0].numel() * states[0].element_size() / 1e6
            variants = {"pytorch": ssd_step, "one_pass": cpu_step.ssd_step_,
                        "one_pass_portable": lambda s, *a, f=portable[dtype]: cpu_step.run(f, s, *a)}
            for variant, step in variants.items():
                results["ms_per_layer"][f"{variant} {name}"] = per_layer_ms(step, states, inputs, args.repeats)
    print(json.dumps(results["ms_per_layer"], indent=1))
    write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
