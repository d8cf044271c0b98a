"""`ssmusic compare`: the papers' convergence experiment, with seeds.

Every variant (backbone × conditioning, matched parameter count through the preset) is trained once
per seed; runs with the same seed see the same data order, crops, caption dropout and
initialisation seed, so the variants differ only in the model. Validation cross-entropy (with the
true, shuffled and null captions, so also the conditioning gap) is logged at every evaluation step
by `ssmusic train`; optionally, at chosen steps, each run's checkpoint generates a fixed set of
captions which are scored with FAD, KL and instrument adherence (`ssmusic.metrics.evaluate`).
compare_report turns the runs into mean-and-spread tables and plots against steps and wall time.

Resumable: a finished run (RUN/final) is reused, an interrupted one is resumed, generation results
already in RUN/generation.jsonl are kept. Layout: OUT_DIR/<backbone>-<conditioning>/seed<S>/.
"""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from ssmusic.config import BACKBONES, CONDITIONINGS
from ssmusic.errors import SsmusicError
from ssmusic.training.train import TrainConfig, train


@dataclass(frozen=True)
class Variant:
    backbone: str
    conditioning: str

    @property
    def name(self) -> str:
        return f"{self.backbone}-{self.conditioning}"


@dataclass
class GenerationCheck:
    """Generate the first `prompts` captions of `reference` (split `split`) at each of `steps`."""
    steps: list[int]
    reference: Path
    split: str | None = "test"
    prompts: int = 8
    seconds: float | None = None  # None: the training length (crop or clip), a Transformer's context
    seed: int = 0


def parse_variants(text: str, conditioning: str = "prefix") -> list[Variant]:
    """'simba:prefix,transformer:cross' (a bare backbone takes `conditioning`) -> variants."""
    variants = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        backbone, _, cond = item.partition(":")
        variant = Variant(backbone, cond or conditioning)
        if variant.backbone not in BACKBONES or variant.conditioning not in CONDITIONINGS:
            raise SsmusicError(f"--variants {item!r}: expected BACKBONE[:CONDITIONING] with BACKBONE in "
                               f"{list(BACKBONES)} and CONDITIONING in {list(CONDITIONINGS)}")
        if variant in variants:
            raise SsmusicError(f"--variants: {variant.name} is listed twice")
        variants.append(variant)
    if not variants:
        raise SsmusicError("--variants: expected at least one, e.g. simba:prefix,transformer:prefix")
    return variants


def parse_ints(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SsmusicError(f"{option} {text!r}: expected a comma list of integers, e.g. 0,1,2") from None
    if not values or len(set(values)) != len(values):
        raise SsmusicError(f"{option} {text!r}: expected distinct integers, e.g. 0,1,2")
    return values


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def read_metrics(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / "metrics.jsonl")


def matched_configs(data_dir: Path, base: TrainConfig, variants: list[Variant]) -> dict[Variant, TrainConfig]:
    """Each variant's training config, its depth chosen so its parameter count is closest to the
    preset's prefix-SiMBA (the preset alone matches backbones within one conditioning only: cross
    attention adds ~35% at the small preset). An explicit --model n_layers=N is kept as given."""
    from ssmusic.model.presets import count_parameters, matching_depth
    from ssmusic.data.datasets import load_manifest

    manifest = {"text_dim": None, **load_manifest(data_dir)}
    target = count_parameters(replace(base, backbone="simba", conditioning="prefix", channel_mixer="mlp")
                              .lm_config(manifest))
    configs = {}
    for variant in variants:
        config = replace(base, backbone=variant.backbone, conditioning=variant.conditioning)
        if "n_layers" not in base.model_overrides:
            depth = matching_depth(config.lm_config(manifest), target)
            config = replace(config, model_overrides={**base.model_overrides, "n_layers": depth})
        configs[variant] = config
    return configs


def generation_metrics(model_dir: Path, check: GenerationCheck, out_dir: Path) -> dict:
    """Generate the check's captions with the model in `model_dir` into `out_dir` (WAV + sidecar),
    then FAD, KL and adherence against the reference split, and the judges that hear music (HEARD)."""
    from ssmusic.io.audio import write_wav
    from ssmusic.io.atomic import write_json_atomic
    from ssmusic.metrics.evaluate import collect_rows, evaluate
    from ssmusic.pipeline import TextToMusic

    captions = [row["caption"] for row in collect_rows(check.reference, check.split) if row["caption"]]
    captions = captions[: check.prompts]
    model = TextToMusic.from_pretrained(model_dir)
    seconds = check.seconds or model.config.clip_seconds
    for start in range(0, len(captions), 8):
        batch = captions[start:start + 8]
        audio, rate = model.generate(batch, seconds=seconds, seed=check.seed + start)
        for index, (caption, wav) in enumerate(zip(batch, audio), start=start):
            write_wav(out_dir / f"{index:03d}.wav", wav, rate)
            write_json_atomic(out_dir / f"{index:03d}.json", {"prompt": caption, "seed": check.seed + start})
    result = evaluate(out_dir, check.reference, ("fad", "kl", "adherence") + HEARD, split=check.split, progress=False)
    result.pop("clips", None)
    return {"fad": result["fad"]["value"], "kl": result["kl"]["value"], "adherence": result["adherence"].get("value"),
            **{name: _figure(result, path) for name, path in HEARD_FIGURES.items()},
            "prompts": len(captions), "seconds": round(seconds, 3)}


# the judges that hear music (docs/evaluation.md), and the figure of each that a compare records
HEARD = ("music_fd", "tag_adherence", "motion", "tempo", "key")
HEARD_FIGURES = {"music_fd": "music_fd.value", "music_fd_floor": "music_fd.floor.mean",
                 "tag_adherence": "tag_adherence.value", "frozen_ratio": "motion.frozen_run_s.ratio",
                 "tempo_hit": "tempo.hit.value", "mode": "key.mode_given_tonic.value"}


def _figure(result: dict, path: str) -> float | None:
    """A nested figure, or None where its judge was skipped."""
    value = result
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _run_one(data_dir: Path, run_dir: Path, config: TrainConfig, check: GenerationCheck | None,
             progress: bool) -> None:
    """Train one run to the end, pausing at each generation step to score its checkpoint."""
    log = run_dir / "generation.jsonl"
    done = {record["step"] for record in read_jsonl(log)}
    for step in sorted(s for s in (check.steps if check else []) if s <= config.steps and s not in done):
        if (run_dir / "final").is_dir():
            if step != config.steps:
                continue  # finished before this check was asked for: its checkpoint is gone
            checkpoint = run_dir / "final"
        else:
            resume = (run_dir / "train_config.json").is_file()
            checkpoint = train(data_dir, run_dir, config, resume=resume, stop_after=step, progress=progress)
            if checkpoint is None or checkpoint.name not in (f"step_{step:07d}", "final"):
                continue  # resumed past this step: it cannot be scored any more
        record = {"step": step, **generation_metrics(checkpoint, check, run_dir / "generated" / f"step_{step}")}
        with log.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
    if not (run_dir / "final").is_dir():
        train(data_dir, run_dir, config, resume=(run_dir / "train_config.json").is_file(), progress=progress)


def _settings(data_dir: Path, base: TrainConfig, seeds: list[int], check: GenerationCheck | None,
              progress: bool) -> dict:
    """What the report says about how it was made; warns when the validation split is small."""
    from ssmusic.data.datasets import load_manifest

    valid_clips = load_manifest(data_dir)["splits"].get("valid", 0)
    if valid_clips < 30 and progress:
        print(f"warning: {data_dir} has {valid_clips} validation clips; under ~30 the validation loss is noisy")
    settings = {"preset": base.preset, "model": dict(base.model_overrides), "steps": base.steps, "seeds": seeds, "valid_clips": valid_clips,
                "crop_frames": base.crop_frames, "batch_size": base.batch_size,
                "validation": (f"consecutive {base.crop_frames}-frame windows of each valid clip (the training "
                               "crop length)" if base.crop_frames else "whole valid clips")}
    if check is not None:
        settings["generation"] = {"steps": check.steps, "reference": str(check.reference), "split": check.split,
                                  "prompts": check.prompts, "seconds": check.seconds or "training length"}
    return settings


def time_steps(data_dir: Path, configs: dict[Variant, TrainConfig], scratch: Path, steps: int = 8,
               rounds: int = 3) -> dict[str, float]:
    """Median seconds per optimizer step of each variant, timed round-robin in this process (`rounds`
    short runs of `steps` steps each, the first step of every run dropped as warm-up). The wall time a
    run logs carries whatever else a shared machine did while it trained; interleaving short timed
    runs puts every variant under the same load, so steps × these seconds is a fair time axis."""
    durations: dict[str, list[float]] = {variant.name: [] for variant in configs}
    for round_index in range(rounds):
        for variant, config in configs.items():
            run_dir = scratch / f"{variant.name}-{round_index}"
            shutil.rmtree(run_dir, ignore_errors=True)
            train(data_dir, run_dir, replace(config, steps=steps, eval_every=steps + 1, save_every=steps + 1),
                  progress=False)
            walls = [record["wall_s"] for record in read_metrics(run_dir) if "loss" in record]
            durations[variant.name] += [later - earlier for earlier, later in zip(walls[1:], walls[2:])]
            shutil.rmtree(run_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    # A step below the log's 0.1 ms resolution counts as 0.1 ms, so a budget never divides by zero.
    return {name: max(1e-4, round(statistics.median(values), 4)) for name, values in durations.items()}


def parse_lrs(text: str) -> dict[str, float]:
    """'simba=5e-4,transformer=3e-4' -> a learning rate per backbone."""
    lrs = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        backbone, _, value = item.partition("=")
        try:
            lrs[backbone] = float(value)
        except ValueError:
            lrs[backbone] = -1.0
        if backbone not in BACKBONES or not lrs[backbone] > 0:
            raise SsmusicError(f"--lr-by-backbone {item!r}: expected BACKBONE=LR with BACKBONE in {list(BACKBONES)} "
                               "and LR > 0, e.g. simba=5e-4,transformer=3e-4")
    return lrs


def budget_steps(data_dir: Path, configs: dict[Variant, TrainConfig], out_dir: Path, budget_s: float,
                 progress: bool = True) -> dict:
    """Equal training-time budgets, each run with its own full schedule: every variant's steps are
    `budget_s` over its seconds per step, measured here first (time_steps: interleaved rounds, the
    same load for every variant; evaluation excluded). Saved as OUT_DIR/time_budget.json and reused
    by reruns, so a resumed run keeps the schedule it started with."""
    from ssmusic.io.atomic import write_json_atomic

    path = out_dir / "time_budget.json"
    names = sorted(variant.name for variant in configs)
    record = json.loads(path.read_text()) if path.is_file() else {}
    if record.get("budget_s") != budget_s or sorted(record.get("step_seconds", {})) != names:
        if progress:
            print(f"timing every variant's step for a {budget_s:g} s budget each")
        seconds = time_steps(data_dir, configs, out_dir / ".step_timing")
        record = {"budget_s": budget_s, "step_seconds": seconds,
                  "steps": {name: max(1, int(budget_s / seconds[name])) for name in names}}
        write_json_atomic(path, record)
    return record


def compare(data_dir: str | Path, out_dir: str | Path, base: TrainConfig, variants: list[Variant],
            seeds: list[int] | None = None, check: GenerationCheck | None = None, progress: bool = True,
            time_steps_per_run: int = 0, time_budget: float = 0.0, lrs: dict[str, float] | None = None) -> dict:
    """Train every variant once per seed (or reuse finished runs); write compare.json / .md / .png.
    `time_budget`: seconds of training per run instead of `base.steps` (budget_steps); `lrs`: a
    learning rate per backbone (others keep base's)."""
    from ssmusic.experiments.report import parameter_count, write_report

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    seeds = seeds or [base.seed]
    settings = _settings(data_dir, base, seeds, check, progress)
    curves: dict[str, dict[int, list[dict]]] = {}
    generation: dict[str, dict[int, list[dict]]] = {}
    configs = {variant: replace(config, lr=(lrs or {}).get(variant.backbone, config.lr))
               for variant, config in matched_configs(data_dir, base, variants).items()}
    settings["lr"] = {variant.name: config.learning_rate() for variant, config in configs.items()}
    if time_budget:
        budget = budget_steps(data_dir, configs, out_dir, time_budget, progress)
        configs = {variant: replace(config, steps=budget["steps"][variant.name])
                   for variant, config in configs.items()}
        settings["time_budget"] = budget
    for variant in variants:
        for seed in seeds:
            run_dir = out_dir / variant.name / f"seed{seed}"
            config = replace(configs[variant], seed=seed)
            if progress:
                print(f"== {variant.name} seed {seed}" + (" (reused)" if (run_dir / "final").is_dir() else ""))
            _run_one(data_dir, run_dir, config, check, progress)
            curves.setdefault(variant.name, {})[seed] = read_metrics(run_dir)
            generation.setdefault(variant.name, {})[seed] = read_jsonl(run_dir / "generation.jsonl")
    params = {v.name: parameter_count(out_dir / v.name / f"seed{seeds[0]}" / "final") for v in variants}
    step_seconds = None
    if time_steps_per_run:
        if progress:
            print(f"timing {time_steps_per_run} steps per variant, 3 interleaved rounds")
        step_seconds = time_steps(data_dir, {v: replace(configs[v], seed=seeds[0]) for v in variants},
                                  out_dir / ".step_timing", time_steps_per_run)
    return write_report(out_dir, curves, generation, params, settings, step_seconds)


def run(args) -> int:
    from ssmusic.training.train import config_from_args

    args.resume, args.backbone = False, "simba"  # each variant is set per run
    base = config_from_args(args)
    variants = parse_variants(args.variants, args.conditioning)
    seeds = parse_ints(args.seeds, "--seeds") if args.seeds else [args.seed]
    check = None
    if args.gen_steps:
        if not args.reference:
            raise SsmusicError("--gen-steps: needs --reference AUDIO_DIR (audio + captions.csv, e.g. data/demo)")
        check = GenerationCheck(parse_ints(args.gen_steps, "--gen-steps"), Path(args.reference), args.reference_split,
                                args.gen_prompts, args.gen_seconds)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.time_budget < 0:
        raise SsmusicError(f"--time-budget: expected seconds >= 0, got {args.time_budget}")
    lrs = parse_lrs(args.lr_by_backbone) if args.lr_by_backbone else None
    result = compare(args.data_dir, args.out, base, variants, seeds, check, time_steps_per_run=args.time_steps,
                     time_budget=args.time_budget, lrs=lrs)
    print(result["table"])
    print(f"plot: {Path(args.out) / 'compare.png'}")
    return 0
