"""Finding (b) per GPU-second: SiMBA against the equal-size Transformer trained for equal GPU-time
budgets, each with its own full schedule and a learning rate chosen for it, over >= 3 seeds; judged
by validation loss there and by the judges on generated audio afterwards, on the CPU.

Phases (a lent GPU is fresh at every call and takes only small files back: every phase leaves its
results in --work, `pack` puts what the next steps need in one archive; no weights travel):
  sweep   one seed per (backbone, --lrs) for --sweep-budget s each: sweep.json, each backbone's lr
          by final validation loss
  runs    `ssmusic compare` with --time-budget --budget s per run, --seeds, at the swept lrs
  codes   each finished run's final model generates the first --prompts test captions (the
          dataset's cached caption embeddings: no text encoder needed on the GPU) -> codes.safetensors
  pack    OUT/finding_b.tar.gz: sweep.json, compare.json/.md, time_budget.json, every run's
          metrics.jsonl and train_config.json, and the codes
  judge   (CPU, after unpacking) decode each run's codes with the dataset's codec into WAVs with
          sidecars and run the judges (ssmusic.metrics.evaluate: FAD, KL, adherence) against
          --reference, the dataset's audio with its captions.csv -> judged.json

    python benchmarks/finding_b_gpu.py sweep,runs,codes,pack --data DATA --work /tmp/fb --out $OUT
    tar -xzf finding_b.tar.gz -C runs/finding_b && \\
        python benchmarks/finding_b_gpu.py judge --work runs/finding_b --reference AUDIO_DIR

The papers' setting is the small preset at 2,588 frames (--crop-frames 2588): the dataset's clips
must be at least that long (60 s with the offline codec at 43 frames/s). By its budgets the sweep
trains 3 lrs x 2 architectures x 30 s and the runs 2 x 3 seeds x 60 s, each after a short timing of
every variant's step: two device calls (carry the first's sweep.json into the second's --work).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import torch

from ssmusic.data.datasets import CodesDataset, load_batch, load_manifest
from ssmusic.errors import SsmusicError
from ssmusic.experiments.compare import compare, parse_variants, read_metrics
from ssmusic.io.atomic import write_json_atomic
from ssmusic.training.config import TrainConfig

VARIANTS = "simba,transformer"
METRICS = ("fad", "kl", "adherence")


def base_config(args) -> TrainConfig:
    overrides = json.loads(args.model) if args.model else {}
    return TrainConfig(preset=args.preset, batch_size=args.batch_size, crop_frames=args.crop_frames,
                       eval_every=args.eval_every, save_every=10 ** 9, seed=0, device=args.device,
                       compile=args.compile, warmup_steps=args.warmup_steps, model_overrides=overrides)


def final_loss(run_dir: Path) -> float:
    losses = [r["val_loss"] for r in read_metrics(run_dir) if "val_loss" in r]
    if not losses:
        raise SsmusicError(f"{run_dir}: no validation loss logged (does the dataset have a valid split?)")
    return losses[-1]


def sweep(args, work: Path) -> dict:
    """Each backbone's lr: the lowest final validation loss after --sweep-budget s, seed 0."""
    losses: dict[str, dict[str, float]] = {}
    for lr in args.lrs.split(","):
        out = work / "sweep" / f"lr{lr}"
        compare(args.data, out, replace(base_config(args), lr=float(lr)), parse_variants(VARIANTS), [0],
                progress=False, time_budget=args.sweep_budget)
        for variant in parse_variants(VARIANTS):
            losses.setdefault(variant.backbone, {})[lr] = final_loss(out / variant.name / "seed0")
    chosen = {backbone: float(min(by_lr, key=by_lr.get)) for backbone, by_lr in losses.items()}
    record = {"budget_s": args.sweep_budget, "final_val_loss": losses, "lr": chosen}
    write_json_atomic(work / "sweep.json", record)
    print("sweep:", json.dumps(record))
    return record


def runs(args, work: Path) -> dict:
    chosen = json.loads((work / "sweep.json").read_text())["lr"]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    return compare(args.data, work / "compare", base_config(args), parse_variants(VARIANTS), seeds,
                   progress=True, time_budget=args.budget, lrs=chosen)


@torch.no_grad()
def codes(args, work: Path) -> None:
    """The first --prompts test clips' cached captions through every finished run's final model."""
    from ssmusic.config import PipelineConfig, load_config
    from ssmusic.io.tensors import save_tensors
    from ssmusic.model.lm import MusicLM
    from ssmusic.model.sampling import SamplingParams

    device = torch.device(args.device)
    test = CodesDataset(args.data, "test")
    indices = list(range(min(args.prompts, len(test))))
    _, text, mask, _ = load_batch(test, indices, device, 0, None, None)
    frames = args.crop_frames or load_manifest(args.data)["clip_frames"]
    for final in sorted((work / "compare").glob("*/seed*/final")):
        pipeline = load_config(PipelineConfig, final / "pipeline.json")
        model = MusicLM.from_pretrained(final, map_location=device)
        sampling = SamplingParams(cfg_scale=pipeline.cfg_scale, top_k=pipeline.top_k,
                                  temperature=pipeline.temperature, seed=args.gen_seed)
        generated = model.generate(text, mask, frames, sampling)
        save_tensors({"codes": generated.cpu()}, final.parent / "codes.safetensors")
        write_json_atomic(final.parent / "codes.json", {"captions": [test[i]["caption"] for i in indices],
                                                        "frames": frames, "seed": args.gen_seed})
        print("codes:", final.parent, tuple(generated.shape))


def pack(work: Path, out: Path) -> Path:
    """One archive of the small files: the records, the runs' logs and configs, and the codes."""
    names = {"sweep.json", "compare.json", "compare.md", "time_budget.json", "metrics.jsonl", "train_config.json",
             "pipeline.json", "codes.safetensors", "codes.json"}
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "finding_b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(p for p in work.rglob("*") if p.name in names and p.is_file()):
            tar.add(path, arcname=str(path.relative_to(work)))
    print("packed:", archive, f"{archive.stat().st_size / 1e6:.2f} MB")
    return archive


def judge(args, work: Path) -> dict:
    """Decode every run's codes with the dataset's codec (as pipeline.json names it) and judge them."""
    from ssmusic.codec.codecs import load_codec
    from ssmusic.io.audio import write_wav
    from ssmusic.io.tensors import load_tensors
    from ssmusic.metrics.evaluate import evaluate

    if not args.reference:
        raise SsmusicError("judge: --reference AUDIO_DIR (the dataset's audio with captions.csv) is needed")
    results: dict = {}
    for found in sorted((work / "compare").glob("*/seed*/codes.safetensors")):
        run = found.parent
        config = json.loads((run / "train_config.json").read_text())
        codec = load_codec(args.codec or json.loads((run / "final" / "pipeline.json").read_text())["codec"])
        captions = json.loads((run / "codes.json").read_text())["captions"]
        audio = codec.decode(load_tensors(found)["codes"])
        out_dir = run / "generated"
        for index, (caption, wav) in enumerate(zip(captions, audio)):
            write_wav(out_dir / f"{index:03d}.wav", wav, codec.sample_rate)
            write_json_atomic(out_dir / f"{index:03d}.json", {"prompt": caption, "seed": config["seed"]})
        scores = evaluate(out_dir, args.reference, METRICS, split="test", progress=False)
        # a judge that cannot score (e.g. no classifier for adherence) says why instead of a value
        results.setdefault(run.parent.name, {})[run.name] = {
            metric: scores[metric].get("value", {"skipped": scores[metric].get("skipped") or scores[metric]})
            for metric in METRICS}
    summary = {}
    for variant, by_seed in results.items():
        for metric in METRICS:
            values = [r[metric] for r in by_seed.values() if isinstance(r[metric], (int, float))]
            if values:
                summary.setdefault(variant, {})[metric] = {"mean": statistics.fmean(values), "min": min(values),
                                                           "max": max(values), "n": len(values)}
    record = {"runs": results, "mean": summary}
    write_json_atomic(work / "judged.json", record)
    print(json.dumps(record, indent=1))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phases", help="comma list of sweep, runs, codes, pack, judge")
    parser.add_argument("--data", help="prepared dataset (ssmusic prepare) with train/valid/test splits")
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", default=None, help="where pack writes finding_b.tar.gz (default: --work)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--model", default="", help="LMConfig overrides as JSON, e.g. '{\"d_model\": 32}'")
    parser.add_argument("--crop-frames", type=int, default=2588)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--compile", action="store_true", help="train --compile (the compile counts in no budget)")
    parser.add_argument("--lrs", default="1e-4,3e-4,1e-3")
    parser.add_argument("--sweep-budget", type=float, default=30.0)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--gen-seed", type=int, default=0)
    parser.add_argument("--reference", default=None, help="judge: the dataset's audio directory")
    parser.add_argument("--codec", default=None, help="judge: the codec (default: the dataset's)")
    args = parser.parse_args()
    work = Path(args.work)
    phases = args.phases.split(",")
    if any(p in phases for p in ("sweep", "runs", "codes")):
        manifest = load_manifest(args.data)
        if args.crop_frames and manifest["clip_frames"] < args.crop_frames:
            sys.exit(f"{args.data}: clips of {manifest['clip_frames']} frames, shorter than --crop-frames "
                     f"{args.crop_frames} (2,588 frames: 60 s clips with the offline codec; or --crop-frames 0)")
    steps = {"sweep": lambda: sweep(args, work), "runs": lambda: runs(args, work), "codes": lambda: codes(args, work),
             "pack": lambda: pack(work, Path(args.out or work)), "judge": lambda: judge(args, work)}
    for phase in phases:
        if phase not in steps:
            sys.exit(f"finding_b_gpu.py: unknown phase {phase!r} (expected {', '.join(steps)})")
        steps[phase]()


if __name__ == "__main__":
    main()
