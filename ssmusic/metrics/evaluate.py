"""`ssmusic evaluate`: judges of generated audio against a reference set.

- judges that hear music (music_eval): the music network's Fréchet distance beside its real-vs-real
  floor, tag KL, tag adherence, motion (frozen run, onsets), tempo and key adherence beside their
  real-clip ceilings, each with n and a 95% interval;
- on demo data v2 (attributes.py): drums present/absent and the melody instrument (and its family),
  each judge's accuracy beside its ceiling on the real clips of the split and their ratio;
- the earlier offline judges: mel-statistics FAD, a mel-statistics instrument classifier's KL and
  adherence, and the CLAP score (with CLAP weights).

Generated: a directory of WAVs whose JSON sidecars (written by `ssmusic generate`) hold the prompt.
Reference: a directory of audio with captions.csv (a demo dataset; `--split` picks e.g. its test
split) or with sidecars. Embeddings are cached per file (content hash + model) so re-evaluation is
fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ssmusic.io import cache
from ssmusic.io.atomic import write_json_atomic
from ssmusic.metrics.clips import KEY_ESTIMATOR, TEMPO_ESTIMATOR, EmbeddingCache, check_estimators
from ssmusic.data.captions import dataset_rows
from ssmusic.checks import check_writable
from ssmusic.errors import SsmusicError

METRICS = ("music_fd", "tag_kl", "tag_adherence", "motion", "tempo", "key", "attributes", "fad", "kl",
           "adherence", "clap")


def collect_rows(directory: str | Path, split: str | None = None) -> list[dict]:
    """One dict per audio file: `path`, `caption` (None if unknown) and, from captions.csv, its other
    columns (attributes such as the instrument). Sidecar JSONs give the prompt of generated audio."""
    from ssmusic.io.audio import list_audio_files

    directory = Path(directory)
    if not directory.is_dir():
        raise SsmusicError(f"{directory}: not a directory of audio")
    rows = dataset_rows(directory, split)
    if rows is not None:
        rows = [{**r, "caption": r.get("caption")} for r in rows]
    else:
        rows = []
        for path in list_audio_files(directory):
            sidecar = path.with_suffix(".json")
            prompt = json.loads(sidecar.read_text()).get("prompt") if sidecar.is_file() else None
            rows.append({"path": path, "caption": prompt})
    if not rows:
        raise SsmusicError(f"{directory}: no audio files" + (f" in split {split!r}" if split else ""))
    return rows


def collect(directory: str | Path, split: str | None = None) -> list[tuple[Path, str | None]]:
    """(audio path, caption) pairs from captions.csv or sidecar JSONs."""
    return [(row["path"], row["caption"]) for row in collect_rows(directory, split)]


def _by_caption(items, features) -> dict[str, np.ndarray]:
    groups: dict[str, list] = {}
    for (_, text), value in zip(items, features):
        if text is not None:
            groups.setdefault(text, []).append(value)
    return {text: np.mean(values, axis=0) for text, values in groups.items()}


def evaluate(generated: str | Path, reference: str | Path, metrics=METRICS, embedding: str | None = None,
             split: str | None = None, clap: str | None = None, cache_dir: str | Path | None = None,
             classifier_dir: str | Path | None = None, progress: bool = True,
             labels: str | Path | None = None, tempo_estimator: str = TEMPO_ESTIMATOR,
             key_estimator: str = KEY_ESTIMATOR, attribute_dir: str | Path | None = None) -> dict:
    """Metrics of the generated WAVs (with sidecars) against the reference audio; see the module doc.
    `labels`: a CSV (prompt,<attribute>) labelling prompts that are not reference captions.
    `tempo_estimator`, `key_estimator`: of ssmusic.metrics.tempo/key.ESTIMATORS (essentia's only
    where it is installed). `attribute_dir`: the attribute judges (default: the shipped, attributes.py)."""
    from tqdm import tqdm

    from ssmusic.metrics.adherence import adherence, read_labels
    from ssmusic.metrics.classifier import DEFAULT_CLASSIFIER_DIR, LabelClassifier
    from ssmusic.metrics.embeddings import MelStats, load_embedding
    from ssmusic.metrics.frechet import frechet_with_interval
    from ssmusic.metrics.kl import paired_kl, paired_kl_values
    from ssmusic.metrics.statistics import BOOTSTRAP, describe
    from ssmusic.metrics.music_eval import MUSIC_METRICS, NETWORK_METRICS, judge_music

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise SsmusicError(f"--metrics: unknown {unknown}; expected some of {list(METRICS)}")
    check_estimators(tempo_estimator, key_estimator)
    ref_rows = collect_rows(reference, split)
    gen_items, ref_items = collect(generated), [(r["path"], r["caption"]) for r in ref_rows]
    cache_root = Path(cache_dir or cache.root() / "embeddings")
    results: dict = {"generated": str(generated), "reference": str(reference), "split": split,
                     "n_generated": len(gen_items), "n_reference": len(ref_items)}

    def embed_all(model, items, label):
        embeddings = EmbeddingCache(model, cache_root)
        return [embeddings(path) for path, _ in tqdm(items, desc=f"{label} ({model.name})", disable=not progress)]

    if "fad" in metrics:
        model = load_embedding(embedding)
        gen = embed_all(model, gen_items, "generated")
        ref = embed_all(model, ref_items, "reference")
        results["fad"] = {**frechet_with_interval(gen, ref), "embedding": model.name,
                          "windows": [sum(map(len, gen)), sum(map(len, ref))]}
    if "kl" in metrics or "adherence" in metrics:
        classifier = LabelClassifier.load(Path(classifier_dir or DEFAULT_CLASSIFIER_DIR))
        stats = MelStats()
        gen_p = classifier.probabilities(np.stack([f.mean(0) for f in embed_all(stats, gen_items, "generated")]))
        ref_p = classifier.probabilities(np.stack([f.mean(0) for f in embed_all(stats, ref_items, "reference")]))
    if "kl" in metrics and not _shared_captions(gen_items, ref_items):
        results["kl"] = {"skipped": "no generated prompt matches a reference caption, so no pair to compare "
                                    "(generate from the reference captions, e.g. a demo split's captions.csv)"}
    elif "kl" in metrics:
        ref_by, gen_by = _by_caption(ref_items, ref_p), _by_caption(gen_items, gen_p)
        value, pairs = paired_kl(ref_by, gen_by)
        results["kl"] = {"value": value, "pairs": pairs, "ci95": describe(paired_kl_values(ref_by, gen_by))["ci95"],
                         "interval": BOOTSTRAP, "classifier": f"logistic regression over "
                         f"{classifier.label} ({len(classifier.classes)} classes) on mel-stats"}
    if "adherence" in metrics:
        attribute = classifier.label
        prompt_labels = {r["caption"]: r[attribute] for r in ref_rows if r["caption"] and r.get(attribute)}
        for prompt, values in (read_labels(labels) if labels else {}).items():
            if attribute in values:
                prompt_labels[prompt] = values[attribute]
        results["adherence"] = adherence(classifier, [p for _, p in gen_items], gen_p, prompt_labels,
                                         [r.get(attribute) or None for r in ref_rows], ref_p)
    if "attributes" in metrics:  # demo data v2: drums and the melody instrument, beside their real-clip ceiling
        from ssmusic.metrics.attributes import judge_attributes

        results["attributes"] = judge_attributes(gen_items, ref_rows, cache_root, progress, attribute_dir,
                                                 read_labels(labels) if labels else None)
    if "clap" in metrics:
        results["clap"] = _clap_score(clap, gen_items, generated, embed_all)
    heard = [m for m in metrics if m in NETWORK_METRICS + MUSIC_METRICS]
    if heard:
        found, clips = judge_music(gen_items, ref_rows, _floor_pool(reference, split), heard, cache_root, progress,
                                   {"tempo_estimator": tempo_estimator, "key_estimator": key_estimator})
        results.update(found)
        results["clips"] = clips
    if all("skipped" in results[m] for m in metrics):
        reasons = "; ".join(f"{m}: {results[m]['skipped']}" for m in metrics)
        raise SsmusicError(f"no metric could be computed ({reasons})")
    return results


def _clap_score(clap: str | None, gen_items: list, generated, embed_all) -> dict:
    """Mean cosine of CLAP text and audio embeddings over prompted clips, or why it is skipped."""
    from ssmusic.metrics.embeddings import ClapEmbedding

    if clap is None:
        return {"skipped": "no CLAP weights given: pass --clap DIR_OR_HUB_ID (e.g. a local copy of "
                           "laion/larger_clap_music)"}
    model = ClapEmbedding(clap)
    prompted = [(p, t) for p, t in gen_items if t]
    if not prompted:
        return {"skipped": f"{generated}: no prompts (sidecar JSONs from ssmusic generate)"}
    audio = np.stack([e.mean(0) for e in embed_all(model, prompted, "generated")])
    text = model.embed_text([t for _, t in prompted])
    audio /= np.linalg.norm(audio, axis=-1, keepdims=True)
    return {"value": float((audio * text).sum(-1).mean()), "model": model.name, "pairs": len(prompted)}


def _floor_pool(reference: str | Path, split: str | None) -> list[dict]:
    """Real clips of the reference dataset outside the evaluated split: where the real-vs-real floors
    draw from (none without a split: the floor is then reported as skipped)."""
    if split is None:
        return []
    return [r for r in dataset_rows(Path(reference)) or [] if r.get("split") != split]


def _shared_captions(generated: list, reference: list) -> set[str]:
    return {t for _, t in generated if t is not None} & {t for _, t in reference if t is not None}


def table(results: dict) -> str:
    from ssmusic.metrics.music_eval import MUSIC_METRICS, NETWORK_METRICS, table_rows

    lines = ["| judge | generated | real: floor / ceiling, details |", "|---|---|---|", *table_rows(results)]
    for name in METRICS:
        entry = results.get(name)
        if entry is None or name in NETWORK_METRICS + MUSIC_METRICS:
            continue
        if name == "attributes":
            from ssmusic.metrics.attributes import table_rows as attribute_rows

            lines.extend(attribute_rows(entry))
            continue
        if "skipped" in entry:
            lines.append(f"| {name} | skipped | {entry['skipped']} |")
        elif name == "adherence":
            ceiling = "n/a" if entry["ceiling"] is None else f"{entry['ceiling']:.0%}"
            top = entry["most_predicted"]
            low, high = entry["ci95"]
            lines.append(f"| {entry['attribute']} accuracy | {entry['value']:.0%} [{low:.0%}, {high:.0%}] n={entry['n']} | "
                         f"ceiling (real clips) {ceiling}, "
                         f"chance {entry['chance']:.0%}, {entry['labelled']} labelled clips, most predicted "
                         f"{top['class']} ({top['share']:.0%}) |")
        else:
            details = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("value", "per_clip", "ci95", "interval"))
            interval = f" [{entry['ci95'][0]:.4g}, {entry['ci95'][1]:.4g}]" if "ci95" in entry else ""
            lines.append(f"| {name} | {entry['value']:.4f}{interval} | {details} |")
    return "\n".join(lines)


def seeds_table(result: dict) -> str:
    """Mean and range over seeds of the headline figures (the 'value' of each judge)."""
    lines = ["| figure | mean over seeds | range | per seed |", "|---|---|---|---|"]
    for path, entry in result["over_seeds"].items():
        ratio = path.startswith("attributes.") and path.endswith(".ratio")  # generated / ceiling
        if (path.endswith(".value") or ratio) and "mean" in entry and ".ceiling" not in path and ".floor" not in path:
            lines.append(f"| {path[:-6] if not ratio else path} | {entry['mean']:.4g} | {entry['min']:.4g}-{entry['max']:.4g} | "
                         f"{', '.join(f'{v:.4g}' for v in entry['per_seed'])} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`ssmusic evaluate`'s arguments."""
    from ssmusic.metrics import key, tempo

    parser.add_argument("generated_dir", metavar="GENERATED_DIR", help="WAVs + sidecars from ssmusic generate "
                        "(with --seeds: the folder that gets one seed_<s>/ per seed)")
    parser.add_argument("--reference", required=True, metavar="DIR",
                        help="reference audio with captions.csv (e.g. a demo dataset) or sidecars")
    parser.add_argument("--split", default=None, help="use only this split of the reference's captions.csv")
    parser.add_argument("--metrics", default=",".join(METRICS), help=f"comma list of {','.join(METRICS)} (default: all)")
    parser.add_argument("--labels", default=None, metavar="CSV",
                        help="prompt,<attribute> rows labelling prompts that are not reference captions (adherence)")
    parser.add_argument("--embedding", default="mel-stats",
                        help="FAD embedding: mel-stats (offline default), clap:<hub id or dir>, codec:<name or dir>")
    parser.add_argument("--clap", default=None, metavar="DIR_OR_HUB_ID", help="CLAP weights for the CLAP score")
    parser.add_argument("--classifier", default=None, metavar="DIR", help="KL/adherence classifier (default: the "
                        "shipped instrument classifier; fit one: python -m ssmusic.metrics.classifier DEMO_DIR --out DIR)")
    parser.add_argument("--attribute-judges", default=None, metavar="DIR", help="attribute judges (drums, melody "
                        "instrument; default: the shipped ones, fitted on demo data v2: python -m "
                        "ssmusic.metrics.attribute_fit DEMO_V2_DIR --out DIR)")
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default ~/.cache/ssmusic/embeddings)")
    parser.add_argument("--tempo-estimator", default=TEMPO_ESTIMATOR, choices=tempo.ESTIMATORS,
                        help=f"beat tracker of the tempo judge (default {TEMPO_ESTIMATOR}; essentia: the optional "
                        "'judges' extra, AGPL-3.0)")
    parser.add_argument("--key-estimator", default=KEY_ESTIMATOR, choices=key.ESTIMATORS,
                        help=f"key estimator of the key judge (default {KEY_ESTIMATOR}; essentia-*: the 'judges' extra)")
    parser.add_argument("--out", default=None, help="results JSON (default GENERATED_DIR/evaluation.json; per-clip "
                        "readings beside it in <name>_clips.json)")
    seeds = parser.add_argument_group("generate and judge over seeds")
    seeds.add_argument("--seeds", default=None, metavar="LIST", help="e.g. 0,1,2: generate the reference split's "
                       "captions once per seed into GENERATED_DIR/seed_<s>/ (kept when complete), judge each, "
                       "report the mean and range over seeds")
    seeds.add_argument("--model", default=None, metavar="DIR", help="model to generate with (default: the shipped one)")
    seeds.add_argument("--seconds", type=float, default=10.0, help="seconds per clip (default 10)")
    seeds.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's)")
    seeds.add_argument("--temperature", type=float, default=None, help="default: the model's")
    seeds.add_argument("--top-k", type=int, default=None, help="default: the model's")
    seeds.add_argument("--threads", type=int, default=1, help="torch CPU threads for generation (default 1)")
    seeds.add_argument("--batch-size", type=int, default=None, help="rows generated together (default: generate's)")
    seeds.add_argument("--no-controls", action="store_true", help="a model with controls (docs/model.md) generates "
                       "without the BPM and key the captions name: what the controls are worth")
    from ssmusic.codec import add_decoder_argument

    add_decoder_argument(seeds)  # the figures of a model depend on how its tokens became sound


def run(args) -> int:
    import sys

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    kwargs = {"metrics": metrics, "embedding": args.embedding, "clap": args.clap, "cache_dir": args.cache_dir,
              "classifier_dir": getattr(args, "classifier", None), "labels": args.labels,
              "tempo_estimator": args.tempo_estimator, "key_estimator": args.key_estimator,
              "attribute_dir": getattr(args, "attribute_judges", None)}
    check_estimators(args.tempo_estimator, args.key_estimator)  # before --seeds generates anything
    out = Path(args.out) if args.out else Path(args.generated_dir) / "evaluation.json"
    check_writable([out, out.with_name(out.stem + "_clips.json")], flag="--out")  # before minutes of judging
    command = " ".join(["ssmusic", *getattr(args, "argv", sys.argv[1:])])   # cli.main's argv, when called with one
    if args.seeds:
        from ssmusic.metrics.seeds import evaluate_seeds, parse_seeds

        options = {"model": args.model, "seconds": args.seconds, "cfg": args.cfg, "temperature": args.temperature,
                   "top_k": args.top_k, "threads": args.threads, "batch_size": args.batch_size,
                   "decoder": args.decoder, "no_controls": args.no_controls}
        result = evaluate_seeds(args.generated_dir, args.reference, args.split, parse_seeds(args.seeds), options,
                                evaluate, kwargs)
        write_json_atomic(out, {"command": command, **result})
        for seed, per_seed in result["per_seed"].items():
            print(f"seed {seed}:\n{table(per_seed)}\n")
        print(seeds_table(result))
    else:
        results = evaluate(args.generated_dir, args.reference, split=args.split, **kwargs)
        clips = results.pop("clips", None)
        write_json_atomic(out, {"command": command, **results})
        if clips is not None:
            write_json_atomic(out.with_name(out.stem + "_clips.json"), clips)
        print(table(results))
    print(f"written: {out}")
    return 0
