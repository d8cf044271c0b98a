"""`ssmusic export`: a training run (or model directory) -> a model directory to ship or share.

Copies the model files (no optimizer state), optionally stores the weights in a smaller float type
(they are cast back to the model's dtype on load), writes the sampling defaults chosen for the model
into pipeline.json, and keeps the training log beside it for provenance. The target is replaced
atomically.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ssmusic.io.atomic import atomic_dir
from ssmusic.io.atomic import write_json_atomic
from ssmusic.config import PipelineConfig, load_config
from ssmusic.errors import SsmusicError
from ssmusic.io.tensors import load_tensors, save_tensors

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def training_run(model_dir: Path) -> Path | None:
    """The training run a model directory belongs to (RUN_DIR/final or RUN_DIR/checkpoints/step_N, in a
    RUN_DIR with its train_config.json), else None: any other folder's metrics.jsonl is not this model's log."""
    run = model_dir.parent if model_dir.name == "final" else model_dir.parent.parent \
        if model_dir.parent.name == "checkpoints" else None
    return run if run is not None and (run / "train_config.json").is_file() else None


def export(source: str | Path, out: str | Path, dtype: str | None = None, cfg: float | None = None,
           temperature: float | None = None, top_k: int | None = None) -> Path:
    """Write the model of `source` (a model dir, or a run's final/ or newest checkpoint) to `out`."""
    from ssmusic.pipeline import resolve_model_dir

    model_dir, out = resolve_model_dir(source), Path(out)
    if dtype is not None and dtype not in DTYPES:
        raise SsmusicError(f"--dtype: expected one of {list(DTYPES)}, got {dtype!r}")
    if out.resolve() == model_dir.resolve():
        raise SsmusicError(f"--out {out}: is the source itself; choose another directory")
    pipeline = load_config(PipelineConfig, model_dir / "pipeline.json")
    pipeline = replace(pipeline, **{k: v for k, v in {"cfg_scale": cfg, "temperature": temperature,
                                                       "top_k": top_k}.items() if v is not None})  # validated
    tensors = load_tensors(model_dir / "model.safetensors")
    if dtype is not None:
        tensors = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v for k, v in tensors.items()}
    with atomic_dir(out) as tmp:
        shutil.copy2(model_dir / "lm_config.json", tmp / "lm_config.json")
        save_tensors(tensors, tmp / "model.safetensors")
        write_json_atomic(tmp / "pipeline.json", asdict(pipeline))
        run = training_run(model_dir)  # model_card.json: what serve's page says about the model
        for extra in (model_dir / "train_config.json", model_dir / "model_card.json", model_dir / "metrics.jsonl",
                      *([run / "metrics.jsonl"] if run else [])):
            if extra.is_file() and not (tmp / extra.name).exists():
                shutil.copy2(extra, tmp / extra.name)
    return out


def run(args: argparse.Namespace) -> int:
    if getattr(args, "lora_base", None):  # adapters + their base -> a merged model directory, then as usual
        import tempfile

        from ssmusic.training.finetune import merge_adapters

        parent = Path(args.out).resolve().parent
        parent.mkdir(parents=True, exist_ok=True)  # as export itself does for --out
        with tempfile.TemporaryDirectory(dir=parent) as tmp:
            merged = merge_adapters(args.lora_base, args.source, Path(tmp) / "merged")
            out = export(merged, args.out, args.dtype, args.cfg, args.temperature, args.top_k)
        print(f"model: {out}")
        return 0
    out = export(args.source, args.out, args.dtype, args.cfg, args.temperature, args.top_k)
    print(f"model: {out}")
    return 0
