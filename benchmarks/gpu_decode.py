"""Decode speed on a GPU: ms per step of MusicLM.generate with the step replayed from a CUDA graph
(the default on CUDA) against the eager step, by preset and decode weights; 64 prompts' tokens/s;
the wall time of 30 s of DAC-44k audio (2,588 frames); and whether both paths sample the same codes.

    python benchmarks/gpu_decode.py [--presets small,paper] [--device cuda] --out gpu_decode.json
    python benchmarks/gpu_decode.py --device cpu --quick --out /tmp/x.json   # checks the script

ms per step is the slope between a short and a long generation (so the prefill, the capture and the
first frames cancel out), with CFG (2 rows per prompt), top-k 250, random weights and a 16-token
random caption: a step costs the same whatever the weights. `first_call_s` is the first generation
of a shape, capture included. Targets (issue): <= 1.0 ms/step at 34M, <= 2.5 ms at 281M, 64 prompts
>= 50k tokens/s at 34M, 30 s of audio in <= 7 s at 281M.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from ssmusic.experiments.bench.timing import DAC44K_FRAMES_30S
from ssmusic.io.atomic import write_json_atomic
from ssmusic.model import presets
from ssmusic.model.lm import MusicLM
from ssmusic.model.sampling import SamplingParams

SAMPLING = SamplingParams(cfg_scale=3.0, top_k=250, seed=0)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed_generate(model: MusicLM, text: torch.Tensor, steps: int) -> float:
    sync(text.device.type)
    started = time.perf_counter()
    model.generate(text, None, steps, SAMPLING)
    sync(text.device.type)
    return time.perf_counter() - started


def step_ms(model: MusicLM, text: torch.Tensor, short: int, long: int) -> dict:
    first = timed_generate(model, text, short)  # captures (graphs) or warms up (eager)
    times = [(timed_generate(model, text, short), timed_generate(model, text, long)) for _ in range(2)]
    slope = min((b - a) / (long - short) for a, b in times)
    return {"ms_per_step": round(1000 * slope, 3), "first_call_s": round(first, 3),
            "tokens_per_s": round(text.shape[0] / slope, 1)}


def preset_rows(name: str, device: str, steps: dict, prompts: list[int], dtypes: list[str]) -> dict:
    torch.manual_seed(0)
    model = MusicLM(presets.preset(name, dropout=0.0)).to(device).eval()
    rows: dict = {"parameters": model.num_parameters()}
    for count in prompts:
        text = torch.randn(count, 16, model.config.text_dim, device=device)
        for dtype in dtypes:
            model.set_decode_dtype(dtype)
            for path in ("graphs", "eager"):
                model.cuda_graphs = path == "graphs"
                short, long = steps[path]
                rows[f"{path} {dtype} x{count}"] = step_ms(model, text, short, long)
                print(name, path, dtype, count, rows[f"{path} {dtype} x{count}"], flush=True)
    model.set_decode_dtype("float32")
    text = torch.randn(1, 16, model.config.text_dim, device=device)
    codes = {}
    for path in ("graphs", "eager"):
        model.cuda_graphs = path == "graphs"
        codes[path] = model.generate(text, None, steps["agree"], SAMPLING)
    rows["same_codes_graphs_vs_eager"] = bool(torch.equal(codes["graphs"], codes["eager"]))
    rows["agreeing_tokens"] = round(float((codes["graphs"] == codes["eager"]).float().mean()), 4)
    model.cuda_graphs = True
    rows["wall_s_30s_audio"] = round(timed_generate(model, text, steps["audio"]), 3)
    rows["frames_30s_audio"] = steps["audio"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,paper")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--many", type=int, default=64, help="prompts of the batch row (small preset)")
    parser.add_argument("--quick", action="store_true", help="tiny preset, a few steps (checks the script)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_decode.py: no CUDA device")
    steps = {"graphs": (100, 1100), "eager": (50, 250), "agree": 200, "audio": DAC44K_FRAMES_30S}
    names = args.presets.split(",")
    if args.quick:
        steps = {"graphs": (3, 8), "eager": (3, 8), "agree": 6, "audio": 10}
        names, args.many = ["tiny"], 4
    results = {"command": "python " + " ".join(sys.argv), "device": args.device, "torch": torch.__version__,
               "sampling": {"cfg_scale": SAMPLING.cfg_scale, "top_k": SAMPLING.top_k}, "steps": steps, "presets": {}}
    if args.device == "cuda":
        results["gpu"] = torch.cuda.get_device_name(0)
    for name in names:
        prompts = [1, args.many] if name in ("small", "tiny") else [1]
        dtypes = ["float32", "bfloat16"] if args.device == "cuda" or args.quick else ["float32"]
        results["presets"][name] = preset_rows(name, args.device, steps, prompts, dtypes)
        write_json_atomic(args.out, results)  # what is measured survives a cut-off run
    print(json.dumps(results["presets"], indent=1))


if __name__ == "__main__":
    main()
