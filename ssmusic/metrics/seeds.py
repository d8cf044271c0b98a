"""`ssmusic evaluate GEN --seeds 0,1,2`: generate the reference split's captions once per seed (into
GEN/seed_<s>/, skipped when already complete), judge each seed, and report every figure as the mean
and range over seeds beside the per-seed results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from ssmusic.errors import SsmusicError


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as error:
        raise SsmusicError(f"--seeds {text!r}: expected a comma list of integers, e.g. 0,1,2") from error
    if not seeds or len(set(seeds)) != len(seeds):
        raise SsmusicError(f"--seeds {text!r}: expected distinct integers, e.g. 0,1,2")
    return seeds


def _complete(directory: Path, prompts: list[str]) -> bool:
    wavs = sorted(directory.glob("*.wav")) if directory.is_dir() else []
    return len(wavs) == len(prompts) and all(w.with_suffix(".json").is_file() for w in wavs)


def generate_seed(out_dir: Path, reference: str | Path, split: str | None, seed: int, options: dict) -> None:
    """`ssmusic generate --prompts-from REFERENCE/captions.csv --split SPLIT --seed SEED -o OUT_DIR` with
    the sampling options given (model, seconds, cfg, temperature, top_k, threads, batch_size, decoder; max_prompts:
    only the split's first N captions)."""
    from ssmusic.generate import add_arguments, read_prompts
    from ssmusic.generate import run as generate

    captions = Path(reference) / "captions.csv"
    prompts = read_prompts(captions, split)[: options.get("max_prompts") or None]
    if _complete(out_dir, prompts):
        return
    for stale in out_dir.glob("*.wav") if out_dir.is_dir() else []:  # a partial seed: batch seeds depend on order
        stale.unlink()
        stale.with_suffix(".json").unlink(missing_ok=True)
    argv = ["--prompts-from", str(captions), "--seed", str(seed), "-o", str(out_dir)]
    argv += ["--split", split] if split else []
    if options.get("max_prompts"):  # the split's first N captions, as a prompts file beside the seed folders
        subset = out_dir.parent / f"prompts_{split or 'all'}_first{len(prompts)}.txt"
        subset.parent.mkdir(parents=True, exist_ok=True)
        subset.write_text("\n".join(prompts) + "\n", encoding="utf-8")
        argv = ["--prompts-from", str(subset), "--seed", str(seed), "-o", str(out_dir)]
    flags = {"model": "--checkpoint", "seconds": "--seconds", "cfg": "--cfg", "temperature": "--temperature",
             "top_k": "--top-k", "threads": "--threads", "batch_size": "--batch-size", "device": "--device",
             "decoder": "--decoder"}
    for key, flag in flags.items():
        if options.get(key) is not None:
            argv += [flag, str(options[key])]
    argv += ["--no-controls"] if options.get("no_controls") else []
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    generate(parser.parse_args(argv))


def _leaves(result, path=()):
    """(path, number) for every 'value' and 'mean' (floors) and 'ratio' in a nested result."""
    if isinstance(result, dict):
        for key, value in result.items():
            if key in ("value", "ratio", "ratio_to_floor", "mean") and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                yield path + (key,), float(value)
            elif key not in ("clips", "per_clip", "per_seed"):
                yield from _leaves(value, path + (key,))


def aggregate(per_seed: list[dict]) -> dict:
    """Every figure present in the per-seed results -> {path: mean, min, max, seeds, per_seed}."""
    from ssmusic.metrics.statistics import over_seeds

    values: dict[tuple, list[float | None]] = {}
    for index, result in enumerate(per_seed):
        for path, value in _leaves(result):
            values.setdefault(path, [None] * len(per_seed))[index] = value
    return {".".join(path): over_seeds(v) for path, v in values.items()}


def evaluate_seeds(root: str | Path, reference: str | Path, split: str | None, seeds: list[int], options: dict,
                   evaluate: Callable[..., dict], evaluate_kwargs: dict) -> dict:
    """Generate (where missing) and judge each seed with `evaluate` (metrics.evaluate.evaluate, passed in:
    it calls this module); -> {'seeds', 'per_seed': {seed: results}, 'over_seeds'}."""
    from ssmusic.io.atomic import write_json_atomic

    root = Path(root)
    per_seed = {}
    for seed in seeds:
        directory = root / f"seed_{seed}"
        generate_seed(directory, reference, split, seed, options)
        result = evaluate(directory, reference, split=split, **evaluate_kwargs)
        clips = result.pop("clips", None)
        write_json_atomic(directory / "evaluation.json", result)
        if clips is not None:
            write_json_atomic(directory / "evaluation_clips.json", clips)
        per_seed[seed] = result
    return {"generated": str(root), "reference": str(reference), "split": split, "seeds": seeds,
            "generation": {k: v for k, v in options.items() if v is not None},
            "over_seeds": aggregate(list(per_seed.values())), "per_seed": per_seed}
