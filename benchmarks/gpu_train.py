"""Training speed on a GPU: tokens/s of SiMBA against the equal-size Transformer at the papers'
2,588 frames, batch 8, bf16 autocast, eager and under `train --compile` (the same wrapper), with
SiMBA's scan chunk size varied; peak memory and the compile cost.

    python benchmarks/gpu_train.py [--preset small] [--device cuda] --out gpu_train.json
    python benchmarks/gpu_train.py --device cpu --quick --out /tmp/x.json   # checks the script

One optimizer step is what `ssmusic train` does per batch (ssmusic.training.train.train_step):
autocast forward, the label-smoothed loss, backward, gradient clipping, fused AdamW. Data are
random codes and captions (the cost does not depend on them). Each configuration is built afresh
with seed 0; tokens/s is the median over `--steps` steps after `--warmup` (the first of which
compiles). With mamba-ssm importable, eager SiMBA runs its fused Triton scan; under compile the
reference scan (kernels.use_fused). Target (issue): SiMBA/Transformer tokens/s >= 1.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from ssmusic.io.atomic import write_json_atomic
from ssmusic.model import presets
from ssmusic.model.lm import MusicLM, token_loss
from ssmusic.model.ops import kernels
from ssmusic.training import distributed


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(preset: str, backbone: str, compiled: bool, device: torch.device, frames: int, batch: int,
            steps: int, warmup: int, chunk: int | None = None) -> dict:
    torch.manual_seed(0)
    overrides = {"chunk_size": chunk} if chunk else {}
    model = MusicLM(presets.preset(preset, backbone=backbone, **overrides)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    forward = distributed.wrap(model, device, 1, compile=compiled)
    codes = torch.randint(0, model.config.card, (batch, model.config.n_codebooks, frames), device=device)
    text = torch.randn(batch, 16, model.config.text_dim, device=device)
    null = torch.zeros(batch, dtype=torch.bool, device=device)
    compile_before = distributed.compile_seconds()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(warmup + steps):
        sync(device)
        started = time.perf_counter()
        with distributed.autocast(device):
            logits = forward(codes, text, None, null)
        loss = token_loss(logits, codes, model.pad_id, 0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - started)
    step_s = statistics.median(times[warmup:])
    row = {"parameters": model.num_parameters(), "n_layers": model.config.n_layers,
           "chunk_size": model.config.chunk_size, "step_ms": round(1000 * step_s, 2),
           "tokens_per_s": round(batch * frames / step_s, 1), "first_step_s": round(times[0], 2),
           "loss_last": round(float(loss.detach()), 4)}
    if compiled:
        row["compile_s"] = round(distributed.compile_seconds() - compile_before, 2)
    if device.type == "cuda":
        row["peak_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--frames", type=int, default=2588)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--chunks", default="128,256", help="SiMBA chunk sizes timed eagerly beside the preset's")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="tiny preset, short clips (checks the script)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_train.py: no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.preset, args.frames, args.batch, args.steps, args.warmup, args.chunks = "tiny", 64, 2, 2, 1, "32"
    device = torch.device(args.device)
    results = {"command": "python " + " ".join(sys.argv), "device": args.device, "torch": torch.__version__,
               "preset": args.preset, "frames": args.frames, "batch": args.batch, "threads": torch.get_num_threads(),
               "autocast": "bf16" if device.type == "cuda" else "none (fp32)",
               "mamba_ssm_kernels": kernels._mamba_ssm() is not None, "runs": {}}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(0)
    plan = [(backbone, False, None) for backbone in ("simba", "transformer")]
    plan += [("simba", False, int(chunk)) for chunk in args.chunks.split(",") if chunk]
    if args.compile:
        plan += [(backbone, True, None) for backbone in ("simba", "transformer")]
    for backbone, compiled, chunk in plan:
        name = f"{backbone} {'compiled' if compiled else 'eager'}" + (f" chunk {chunk}" if chunk else "")
        results["runs"][name] = measure(args.preset, backbone, compiled, device, args.frames, args.batch,
                                        args.steps, args.warmup, chunk)
        print(name, results["runs"][name], flush=True)
        runs = results["runs"]
        for mode in ("eager", "compiled"):
            if f"simba {mode}" in runs and f"transformer {mode}" in runs:
                results[f"simba_over_transformer_{mode}"] = round(
                    runs[f"simba {mode}"]["tokens_per_s"] / runs[f"transformer {mode}"]["tokens_per_s"], 3)
        write_json_atomic(args.out, results)  # what is measured survives a cut-off run
    print(json.dumps({k: v for k, v in results.items() if k.startswith("simba_over")}, indent=1))


if __name__ == "__main__":
    main()
