"""Does the first codebook (or the first k) of a codec keep the music: drums, tempo, key, timbre?

For each clip of a dataset split (captions.csv with tempo_bpm, key, mode and drums columns, as demo
data v2 writes), encode once with each codec, decode from its first k codebooks, and judge the
original and every reconstruction with the same independent judges (ssmusic.metrics): the music
network's (musicnn, MagnaTagATune) "drums" tag and its tag posteriors, a beat tracker's tempo and a
key estimator. The original clips give each judge's ceiling; the reconstructions are compared with
it, and with the original clip directly (tag KL, embedding cosine, onset agreement).

    python benchmarks/codec_music.py /work/data/demo2 --split test,test_phrasing \
        --codecs shipped,/work/runs/codec_demo2 --ks 1,2,4,8 --out results/codebooks_demo2_music.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ONSET_WINDOW = 0.05  # seconds: an onset of the reconstruction within this of an original onset matches


def onset_f1(reference: np.ndarray, estimate: np.ndarray, window: float = ONSET_WINDOW) -> float:
    """F-measure of onset times matched one-to-one within `window` (greedy in time order)."""
    if len(reference) == 0 and len(estimate) == 0:
        return 1.0
    used, hits = set(), 0
    for t in estimate:
        candidates = [i for i in np.flatnonzero(np.abs(reference - t) <= window) if i not in used]
        if candidates:
            used.add(min(candidates, key=lambda i: abs(reference[i] - t)))
            hits += 1
    precision, recall = hits / max(1, len(estimate)), hits / max(1, len(reference))
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def auc(positive: list[float], negative: list[float]) -> float:
    """Probability that a positive clip scores above a negative one (ties count half)."""
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def judge(wav: np.ndarray, rate: int, tagger) -> dict:
    """Everything the judges say about one mono clip."""
    from ssmusic.metrics.key import estimate_key
    from ssmusic.metrics.tempo import estimate_tempo, onset_times

    probs = tagger.tag_probs(wav, rate).numpy()
    key = estimate_key(wav, rate)
    return {"tags": probs, "embedding": tagger.embed(wav, rate).numpy().ravel(), "tempo": estimate_tempo(wav, rate),
            "key": (key["tonic"], key["mode"]), "onsets": onset_times(wav, rate)}


def compare(row: dict, original: dict, judged: dict, drums_tag: int, mel_distance: float = 0.0) -> dict:
    """One clip's reconstruction (or the original itself) against its caption's truth and the original."""
    from ssmusic.metrics.key import parse_key
    from ssmusic.metrics.kl import kl_divergence
    from ssmusic.metrics.tempo import tempo_match

    truth = parse_key(row["key"])
    p, q = original["tags"] / original["tags"].sum(), judged["tags"] / judged["tags"].sum()
    a, b = original["embedding"], judged["embedding"]
    return {"drums": row["drums"] == "yes", "drums_prob": float(judged["tags"][drums_tag]),
            "tempo_hit": tempo_match(judged["tempo"], float(row["tempo_bpm"])) == "hit",
            "key_hit": tuple(judged["key"]) == tuple(truth), "mode_hit": judged["key"][1] == truth[1],
            "tag_kl": float(kl_divergence(p, q)), "embedding_cosine": float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))),
            "onset_f1": onset_f1(original["onsets"], judged["onsets"]), "mel_distance": mel_distance}


def summarize(records: list[dict]) -> dict:
    from ssmusic.metrics.statistics import describe, share

    drums = [r["drums_prob"] for r in records if r["drums"]]
    none = [r["drums_prob"] for r in records if not r["drums"]]
    return {"n": len(records), "drums_auc": round(auc(drums, none), 4) if drums and none else None,
            "drums_prob_with": describe(drums), "drums_prob_without": describe(none),
            "tempo_hit": share([r["tempo_hit"] for r in records]), "key_hit": share([r["key_hit"] for r in records]),
            "mode_hit": share([r["mode_hit"] for r in records]), "tag_kl": describe([r["tag_kl"] for r in records]),
            "embedding_cosine": describe([r["embedding_cosine"] for r in records]),
            "onset_f1": describe([r["onset_f1"] for r in records]),
            "mel_distance": describe([r["mel_distance"] for r in records])}


def run_codec(name: str, rows: list[dict], ks: list[int], clip_seconds: float, tagger) -> dict:
    from tqdm import tqdm

    from ssmusic.codec.codecs import load_codec
    from ssmusic.io.audio import read_audio
    from ssmusic.metrics.reconstruction import mel_distance

    codec = load_codec(None if name == "shipped" else name)
    drums_tag = tagger.tags.index("drums")
    records = {"original": [], **{k: [] for k in ks}}
    started = time.time()
    for row in tqdm(rows, desc=f"{codec.name}"):
        wav = read_audio(row["path"], codec.sample_rate, mono=True)[0][0, : int(clip_seconds * codec.sample_rate)]
        original = judge(wav.numpy(), codec.sample_rate, tagger)
        records["original"].append(compare(row, original, original, drums_tag))
        codes = codec.encode(wav[None], codec.sample_rate)
        for k in ks:
            rec = codec.decode(codes[:, :k])[0, 0, : wav.shape[-1]]
            distance = mel_distance(wav, rec, codec.sample_rate)
            records[k].append(compare(row, original, judge(rec.numpy(), codec.sample_rate, tagger), drums_tag,
                                      distance))
    return {"codec": codec.name, "n_codebooks": codec.n_codebooks, "seconds": round(time.time() - started, 1),
            "rows": {str(k): summarize(v) for k, v in records.items()},
            "per_clip": {str(k): [{key: (bool(x) if isinstance(x, (bool, np.bool_)) else x) for key, x in r.items()}
                                  for r in v] for k, v in records.items()}}


def table(result: dict) -> str:
    lines = ["| codec | k | mel dist. ↓ | drums AUC | P(drums) with / without | tempo ±8% | key | mode | tag KL ↓ | "
             "embedding cos | onset F1 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in result["codecs"]:
        for k, s in run["rows"].items():
            lines.append(f"| {run['codec']} | {k} | {s['mel_distance']['value']:.3f} | {s['drums_auc']} | "
                         f"{s['drums_prob_with']['value']:.2f} / "
                         f"{s['drums_prob_without']['value']:.2f} | {s['tempo_hit']['value']:.0%} | "
                         f"{s['key_hit']['value']:.0%} | {s['mode_hit']['value']:.0%} | {s['tag_kl']['value']:.3f} | "
                         f"{s['embedding_cosine']['value']:.3f} | {s['onset_f1']['value']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ssmusic.data.captions import dataset_rows
    from ssmusic.metrics.musicnn import load_musicnn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("--split", default="test", help="comma list of splits (default test)")
    parser.add_argument("--codecs", default="shipped", help="comma list: shipped or codec directories")
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--max-clips", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [r for split in args.split.split(",") for r in dataset_rows(args.data_dir, split) or []]
    rows = rows[: args.max_clips or None]
    if not rows or "drums" not in rows[0]:
        raise SystemExit(f"{args.data_dir}: no clips in split {args.split} with a drums column")
    tagger = load_musicnn()
    ks = [int(k) for k in args.ks.split(",")]
    result = {"command": " ".join(["python", *sys.argv]), "data_dir": args.data_dir, "split": args.split,
              "clips": len(rows), "judges": {"music network": tagger.name, "tempo": "librosa beat tracker, ±8%",
                                             "key": "librosa chroma + Krumhansl profiles", "onsets": "librosa"},
              "codecs": [run_codec(name, rows, ks, args.clip_seconds, tagger) for name in args.codecs.split(",")]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    out.with_suffix(".md").write_text(table(result) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
