"""`ssmusic codebooks`: what the first k codebooks of a residual-VQ codec keep, for k = 1..K.

The papers model only the first codebook because it "carries the semantics". This measures it: each
clip (a folder of audio, or one split of a dataset with captions.csv) is encoded once, decoded from
its first k codebooks, and compared with the original and with the full-K decoding:

- mel distance (log10-mel L1) and SI-SNR against the original and against the full-K reconstruction;
- cosine similarity of an audio embedding of the reconstruction to the original's (mel-stats
  offline, standardized per dimension with the classifier's training statistics; CLAP with `clap=`);
- the attribute classifier (shipped: instrument) on the reconstructions, beside the same classifier
  on the originals: accuracy where captions.csv has the label column, and agreement with the
  original's prediction everywhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ssmusic.checks import check_writable
from ssmusic.errors import SsmusicError

SIGNAL_METRICS = ("mel_distance_original", "mel_distance_full", "si_snr_original", "si_snr_full")


def _fit_length(wav: torch.Tensor, length: int) -> torch.Tensor:
    """Codecs decode whole frames: crop or zero-pad [N'] to the original's length."""
    return torch.nn.functional.pad(wav, (0, max(0, length - wav.shape[-1])))[:length]


def _measure_clip(codec, wav: torch.Tensor, features) -> dict:
    """One clip (mono [N] at codec.sample_rate) -> the original's features and, per k, the metrics
    against the original and the full-K reconstruction, plus each reconstruction's features."""
    from ssmusic.metrics.reconstruction import mel_distance, si_snr

    codes = codec.encode(wav[None], codec.sample_rate)
    rate, n = codec.sample_rate, wav.shape[-1]
    decoded = [_fit_length(codec.decode(codes[:, :k])[0, 0], n) for k in range(1, codec.n_codebooks + 1)]
    full = decoded[-1]
    rows = []
    for k, rec in enumerate(decoded, start=1):
        rows.append({"k": k, "mel_distance_original": mel_distance(wav, rec, rate),
                     "mel_distance_full": mel_distance(full, rec, rate),
                     "si_snr_original": si_snr(wav, rec), "si_snr_full": si_snr(full, rec), **features(rec)})
    return {**features(wav), "per_k": rows, "codes": codes, "samples": n}


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)


def _summarize(codec, clips: list[dict], embed_space, classifier, labels: list[str | None]) -> dict:
    """Means over clips per k; classifier accuracy on originals and on each k's reconstructions."""
    from ssmusic.metrics.adherence import label_accuracy

    originals = np.stack([c["embedding"] for c in clips])
    original_probs = classifier.probabilities(np.stack([c["features"] for c in clips]))
    original_pred = original_probs.argmax(-1)
    known = [i for i, y in enumerate(labels) if y is not None]
    unknown_labels = sorted({labels[i] for i in known} - set(classifier.classes))
    if unknown_labels:
        raise SsmusicError(f"codebooks: {classifier.label} label(s) {unknown_labels} are not classes of the "
                           f"classifier ({classifier.classes})")

    def accuracy(probs):
        return round(label_accuracy(probs[known], [labels[i] for i in known], classifier.classes), 4) if known else None

    table = []
    # per clip: its label and the class predicted on the original and at each k (which clips flip)
    predictions = [{"label": labels[i], "original": classifier.classes[original_pred[i]], "by_k": []}
                   for i in range(len(clips))]
    for k in range(1, codec.n_codebooks + 1):
        rows = [c["per_k"][k - 1] for c in clips]
        probs = classifier.probabilities(np.stack([r["features"] for r in rows]))
        for prediction, index in zip(predictions, probs.argmax(-1)):
            prediction["by_k"].append(classifier.classes[index])
        cosine = _cosine(embed_space(np.stack([r["embedding"] for r in rows])), embed_space(originals))
        entry = {"k": k, "kbps": round(k * math.log2(codec.card) * codec.frame_rate / 1000, 3)}
        for key in SIGNAL_METRICS:
            entry[key] = round(float(np.mean([r[key] for r in rows])), 4)
        entry["embedding_cosine"] = round(float(cosine.mean()), 4)
        entry["classifier_agreement"] = round(float(np.mean(probs.argmax(-1) == original_pred)), 4)
        entry["classifier_accuracy"] = accuracy(probs)
        table.append(entry)
    return {"per_k": table, "original_classifier_accuracy": accuracy(original_probs),
            "labelled_clips": len(known), "chance": round(1 / len(classifier.classes), 4),
            "predictions": predictions}


def _network_and_controls(codec, clips: list[dict], features, classifier, labels: list[str | None], tagger) -> dict:
    """The music network's judgement of each k, and the controls (codebook_controls) judged by it
    and by the classifier."""
    from ssmusic.experiments.codebook_controls import control_codes, network_scores
    from ssmusic.metrics.adherence import label_accuracy

    known = [i for i, y in enumerate(labels) if y is not None]
    original_pred = classifier.probabilities(np.stack([c["features"] for c in clips])).argmax(-1)
    per_k = [{"k": k, **network_scores(clips, [c["per_k"][k - 1] for c in clips], tagger.tags)}
             for k in range(1, codec.n_codebooks + 1)]
    controls = []
    for name, codes in control_codes([c["codes"] for c in clips], codec.card).items():
        decoded = [features(_fit_length(codec.decode(code)[0, 0], c["samples"])) for code, c in zip(codes, clips)]
        probs = classifier.probabilities(np.stack([d["features"] for d in decoded]))
        accuracy = (round(label_accuracy(probs[known], [labels[i] for i in known], classifier.classes), 4)
                    if known else None)
        controls.append({"control": name, "classifier_accuracy": accuracy,
                         "classifier_agreement": round(float(np.mean(probs.argmax(-1) == original_pred)), 4),
                         **network_scores(clips, decoded, tagger.tags)})
    return {"network": {"model": tagger.name, "per_k": per_k}, "controls": controls}


def _measure_files(rows: list[dict], directory: str | Path, codec, clip_seconds: float, features,
                   progress: bool) -> tuple[list[dict], list[dict], list[dict]]:
    """Each file's first `clip_seconds` measured by _measure_clip -> (rows measured, their clips, files
    skipped). A file that cannot be read is named and skipped, as `prepare` does (io.audio.read_or_skip)."""
    from tqdm import tqdm

    from ssmusic.io.audio import read_or_skip, report_skipped

    measured, clips, skipped = [], [], []
    for row in tqdm(rows, desc=f"codebooks ({codec.name})", disable=not progress):
        path = Path(row["path"])
        name = path.relative_to(directory) if path.is_relative_to(directory) else path
        loaded = read_or_skip(path, skipped, name, codec.sample_rate, mono=True)
        if loaded is None:
            continue
        wav = loaded[0][0, : int(clip_seconds * codec.sample_rate)] if clip_seconds > 0 else loaded[0][0]
        clips.append(_measure_clip(codec, wav, features))
        measured.append(row)
    report_skipped(skipped)
    if not clips:
        raise SsmusicError(f"{directory}: none of the {len(rows)} audio files could be read "
                           f"(first: {skipped[0]['path']}: {skipped[0]['reason']})")
    return measured, clips, skipped


def codebook_sweep(directory: str | Path, codec=None, split: str | None = None, clap: str | None = None,
                   classifier_dir: str | Path | None = None, clip_seconds: float = 10.0, max_files: int = 0,
                   progress: bool = True, decoder: str | None = None) -> dict:
    """Measure reconstructions from the first k codebooks (k = 1..K) of `codec` (a loaded Codec or a
    name / directory for load_codec, decoding with `decoder`; None = the offline default) on the
    audio of `directory`."""
    from ssmusic.io.audio import resample
    from ssmusic.codec.codecs import load_codec
    from ssmusic.metrics.classifier import DEFAULT_CLASSIFIER_DIR, LabelClassifier
    from ssmusic.metrics.embeddings import ClapEmbedding, MelStats
    from ssmusic.experiments.codebook_controls import load_network, network_features
    from ssmusic.metrics.evaluate import collect_rows

    codec = codec if codec is not None and not isinstance(codec, str) else load_codec(codec, decoder=decoder)
    rows = collect_rows(directory, split)[: max_files or None]
    if split and "split" not in rows[0]:
        raise SsmusicError(f"--split {split}: {Path(directory) / 'captions.csv'} has no 'split' column (or is missing)")
    classifier = LabelClassifier.load(Path(classifier_dir or DEFAULT_CLASSIFIER_DIR))
    stats = MelStats()
    embedder = ClapEmbedding(clap) if clap else None
    tagger, no_network = load_network()

    def features(wav: torch.Tensor) -> dict:
        # the classifier's input (clip-mean mel-stats) doubles as the offline embedding
        mel = stats.embed(resample(wav, codec.sample_rate, stats.sample_rate)).mean(0)
        emb = embedder.embed(resample(wav, codec.sample_rate, embedder.sample_rate)).mean(0) if embedder else mel
        network = network_features(tagger, wav, codec.sample_rate) if tagger is not None else {}
        return {"features": mel, "embedding": emb, **network}

    rows, clips, skipped = _measure_files(rows, directory, codec, clip_seconds, features, progress)
    if embedder is None:
        # raw log-mel statistics share a large common offset (every band's mean log energy), so the
        # raw cosine of any two clips is close to 1. Standardizing with the classifier's fixed
        # training statistics removes it without making one clip's score depend on the others.
        mean, std = classifier.mean.numpy(), classifier.std.numpy()
        embed_space = lambda x: (x - mean) / std  # noqa: E731
        embedding_name = "mel-stats (standardized with the classifier's training statistics)"
    else:
        embed_space, embedding_name = (lambda x: x), embedder.name
    labels = [row.get(classifier.label) or None for row in rows]
    summary = _summarize(codec, clips, embed_space, classifier, labels)
    if tagger is None:
        summary["network"] = {"skipped": no_network}
    else:
        summary.update(_network_and_controls(codec, clips, features, classifier, labels, tagger))
    for row, prediction in zip(rows, summary["predictions"]):
        path = Path(row["path"])
        prediction["path"] = str(path.relative_to(directory) if path.is_relative_to(directory) else path)
    backend_config = getattr(codec.backend, "config", None)
    return {"directory": str(directory), "split": split, "codec": codec.name,
            "decoder": getattr(backend_config, "decoder", None), "n_codebooks": codec.n_codebooks,
            "card": codec.card, "frame_rate": round(codec.frame_rate, 3), "sample_rate": codec.sample_rate,
            "clips": len(clips), "skipped": skipped, "clip_seconds": clip_seconds, "embedding": embedding_name,
            "classifier": {"label": classifier.label, "classes": len(classifier.classes),
                           "dir": str(classifier_dir or "shipped (ssmusic/assets/classifier)")}, **summary}


def markdown(result: dict) -> str:
    label = result["classifier"]["label"]

    def pct(value):
        return "n/a" if value is None else f"{value:.0%}"

    lines = [f"| k | kbps | mel dist. vs original ↓ | mel dist. vs full-K ↓ | SI-SNR vs original (dB) | "
             f"SI-SNR vs full-K (dB) | embedding cosine ↑ | {label} accuracy | agrees with original |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["per_k"]:
        lines.append(f"| {r['k']} | {r['kbps']:g} | {r['mel_distance_original']:.3f} | {r['mel_distance_full']:.3f} | "
                     f"{r['si_snr_original']:.1f} | {r['si_snr_full']:.1f} | {r['embedding_cosine']:.3f} | "
                     f"{pct(r['classifier_accuracy'])} | {r['classifier_agreement']:.0%} |")
    lines.append(f"| original | | 0 | | | | 1 | {pct(result['original_classifier_accuracy'])} | 100% |")
    network = result.get("network", {})
    if "skipped" in network or not network:
        lines.append(f"\nmusic network: skipped ({network.get('skipped', 'not run')})")
        return "\n".join(lines)
    lines += ["", f"| decoded from | music network ({network['model']}): top instrument tag agrees with original "
              f"[95% CI] | tag KL to original | embedding cosine | {label} accuracy | {label} agrees |",
              "|---|---|---|---|---|---|"]

    def row(name, scores, accuracy, agreement):
        a, kl, cos = scores["network_instrument_agreement"], scores["network_tag_kl"], scores["network_cosine"]
        return (f"| {name} | {a['value']:.0%} [{a['ci95'][0]:.0%}, {a['ci95'][1]:.0%}] n={a['n']} | {kl['value']:.3f} | "
                f"{cos['value']:.3f} | {pct(accuracy)} | {agreement:.0%} |")

    for r, k in zip(network["per_k"], result["per_k"]):
        lines.append(row(f"first {r['k']} codebook(s)", r, k["classifier_accuracy"], k["classifier_agreement"]))
    for c in result["controls"]:
        lines.append(row(f"control: {c['control']}", c, c["classifier_accuracy"], c["classifier_agreement"]))
    return "\n".join(lines)


def plot(result: dict, path: str | Path) -> None:
    """Four panels against k, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssmusic.io.atomic import atomic_path

    ks = [r["k"] for r in result["per_k"]]
    series = {key: [r[key] for r in result["per_k"]] for key in result["per_k"][0]}
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    axes[0].plot(ks, series["mel_distance_original"], marker="o", label="vs original")
    axes[0].plot(ks, series["mel_distance_full"], marker="o", label="vs full-K")
    axes[0].set(ylabel="log10-mel L1 ↓", title="mel distance")
    full = [v if v < 100 else float("nan") for v in series["si_snr_full"]]  # k = K vs itself: not a point
    axes[1].plot(ks, series["si_snr_original"], marker="o", label="vs original")
    axes[1].plot(ks, full, marker="o", label="vs full-K")
    axes[1].set(ylabel="dB", title="SI-SNR")
    axes[2].plot(ks, series["embedding_cosine"], marker="o")
    axes[2].set(ylabel="cosine to original ↑", title=f"embedding: {result['embedding'].split(' (')[0]}")
    label = result["classifier"]["label"]
    if result["original_classifier_accuracy"] is not None:
        axes[3].plot(ks, series["classifier_accuracy"], marker="o", label="accuracy on reconstructions")
        axes[3].axhline(result["original_classifier_accuracy"], color="k", ls="--", label="accuracy on originals")
        axes[3].axhline(result["chance"], color="grey", ls=":", label="chance")
    axes[3].plot(ks, series["classifier_agreement"], marker="s", label="agrees with original's prediction")
    axes[3].set(ylabel="share of clips", title=f"{label} classifier", ylim=(-0.02, 1.02))
    for axis in axes:
        axis.set_xlabel("first k codebooks")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    figure.suptitle(f"{result['codec']}: {result['clips']} clips of {result['directory']}"
                    + (f" ({result['split']})" if result["split"] else ""))
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    plt.close(figure)


def run(args) -> int:
    import sys

    from ssmusic.io.atomic import write_json_atomic, write_text_atomic

    out = Path(args.out)
    if out.suffix != ".json":
        raise SsmusicError(f"--out {out}: expected a .json path (the .md table and .png plot go beside it)")
    check_writable([out, out.with_suffix(".md"), out.with_suffix(".png")], flag="--out")  # before minutes of work
    result = codebook_sweep(args.audio_dir, args.codec, args.split, args.clap, args.classifier, args.clip_seconds,
                            args.max_files, decoder=args.decoder)
    table = markdown(result)
    write_json_atomic(out, {"command": " ".join(["ssmusic", *sys.argv[1:]]), **result})
    write_text_atomic(out.with_suffix(".md"), table + "\n")
    plot(result, out.with_suffix(".png"))
    print(table)
    print(f"written: {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    return 0
