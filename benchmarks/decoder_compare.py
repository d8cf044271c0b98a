"""The mel codec's learned decoder against Griffin-Lim on held-out audio.

    python benchmarks/decoder_compare.py [--demo /work/data/demo] [--vocoder DIR] [--out results/decoder_compare.json]

Clips: the demo dataset's test split (first 10 s of each clip) and the Debian-packaged real
recordings' held-out test tracks (ssmusic.data.real_music; three 10 s segments per track, at a
quarter, half and three quarters of its length). Each clip is encoded once with all codebooks and
decoded from its first k in {1, K} by both decoders. Per clip set, k and decoder: the multi-resolution
log-magnitude STFT distance (ssmusic.metrics.reconstruction.stft_distance; n_fft 512/1024/2048) and
the 80-band log-mel distance to the original, mean with a 95% t-interval over clips, and the ratio
learned / Griffin-Lim (of the means, and per clip with its interval). Beside them:
- floor: each decoder on the unquantised mel (what the decoder alone loses);
- ceiling: the distance between two unrelated clips of the set (clip i against clip i + 1);
- float16 weights against float32 (`--vocoder` a float32 checkpoint; the shipped file is float16);
- real-time factor of each decoder on ONE thread (10 s of codes, k = 1 and K, median of 5);
- the music network's distance (1 - cosine of musicnn embeddings), when ssmusic.metrics.musicnn
  exists (otherwise reported as skipped, with the reason).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

from ssmusic.codec.codecs import DEFAULT_CODEC_DIR, Codec
from ssmusic.codec.transform import TransformCodec
from ssmusic.codec.vocoder import Vocoder
from ssmusic.io.atomic import write_json_atomic
from ssmusic.io.audio import read_audio
from ssmusic.metrics.reconstruction import mel_distance, stft_distance

TARGET_RATIO = 0.75


def interval(values: list[float]) -> dict:
    """Mean, 95% t-interval and n."""
    from scipy.stats import t

    n = len(values)
    mean = statistics.fmean(values)
    half = float(t.ppf(0.975, n - 1)) * statistics.stdev(values) / n ** 0.5 if n > 1 else float("nan")
    return {"mean": round(mean, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)], "n": n}


def clip_sets(demo: Path | None, seconds: float, rate: int) -> dict[str, list[tuple[str, torch.Tensor]]]:
    from ssmusic.data.captions import split_paths
    from ssmusic.data.real_music import debian_tracks

    n = round(seconds * rate)
    sets = {}
    if demo is not None:
        sets["demo_test"] = [(Path(p).name, read_audio(p, rate, mono=True)[0][0, :n]) for p in split_paths(demo, "test")]
    real = []
    for row in debian_tracks("test"):
        wav = read_audio(row["path"], rate, mono=True)[0][0]
        for fraction in (0.25, 0.5, 0.75):
            start = int((wav.shape[-1] - n) * fraction)
            real.append((f"{row['path'].name}@{fraction}", wav[start:start + n]))
    sets["real_test"] = real
    return sets


def decoders(vocoder_dir: Path) -> dict[str, Codec]:
    base = TransformCodec.load(DEFAULT_CODEC_DIR, decoder="griffin-lim")
    vocoder = Vocoder.load(vocoder_dir)
    half = copy.deepcopy(vocoder)
    with torch.no_grad():
        for p in half.parameters():
            p.copy_(p.half().float())
    from dataclasses import replace

    learned = replace(base.config, decoder="vocoder")
    return {"griffin-lim": Codec(base, base.name),
            "vocoder": Codec(TransformCodec(learned, base.codebooks, vocoder=vocoder), base.name),
            "vocoder_fp16_weights": Codec(TransformCodec(learned, base.codebooks, vocoder=half), base.name)}


def judges(rate: int) -> tuple[dict, dict]:
    """({name: distance(reference, estimate)}, skipped): the STFT and mel distances, and the music
    network's (1 - cosine of musicnn's penultimate-layer embeddings) where ssmusic.metrics.musicnn exists."""
    out = {"stft_distance": stft_distance, "mel_distance": lambda a, b: mel_distance(a, b, rate)}
    try:
        from ssmusic.metrics.musicnn import load_musicnn
    except ImportError as err:
        return out, {"musicnn_distance": f"ssmusic.metrics.musicnn is not available ({err}); pending"}
    tagger = load_musicnn()
    memo: dict[int, torch.Tensor] = {}

    def musicnn_distance(a: torch.Tensor, b: torch.Tensor) -> float:
        ea = memo.setdefault(id(a), tagger.embed(a, rate))  # the original: embedded once per clip
        eb = tagger.embed(b, rate)
        return float(1 - torch.nn.functional.cosine_similarity(ea.flatten(), eb.flatten(), dim=0))

    out["musicnn_distance"] = musicnn_distance
    return out, {}


def measure_set(clips: list[tuple[str, torch.Tensor]], codecs: dict[str, Codec], rate: int, metrics: dict) -> dict:
    """Per k and decoder: each judge's distance to the original; floors, ceiling, ratios."""
    gl = codecs["griffin-lim"]
    K = gl.n_codebooks
    rows = {f"k{k}": {name: {m: [] for m in metrics} for name in codecs} for k in (1, K)}
    floor = {name: {m: [] for m in metrics} for name in ("griffin-lim", "vocoder")}
    for _, wav in clips:
        codes = gl.encode(wav[None], rate)
        n = wav.shape[-1]
        for k in (1, K):
            for name, codec in codecs.items():
                out = codec.decode(codes[:, :k])[0, 0, :n]
                for metric, distance in metrics.items():
                    rows[f"k{k}"][name][metric].append(distance(wav, out))
        features = gl.backend.features(wav[None])
        for name in floor:
            out = codecs[name].backend.synthesize(features, codes.shape[-1] * gl.samples_per_frame)[0, :n]
            for metric, distance in metrics.items():
                floor[name][metric].append(distance(wav, out))
    result = {"clips": len(clips), "by_k": {}}
    for key, by_name in rows.items():
        entry = {name: {m: interval(v) for m, v in values.items()} for name, values in by_name.items()}
        for metric in metrics:
            ours, theirs = by_name["vocoder"][metric], by_name["griffin-lim"][metric]
            entry[f"{metric}_ratio_vocoder_over_griffin_lim"] = {
                "of_means": round(statistics.fmean(ours) / statistics.fmean(theirs), 4),
                "per_clip": interval([a / b for a, b in zip(ours, theirs)])}
        result["by_k"][key] = entry
    result["floor_unquantised_mel"] = {name: {m: interval(v) for m, v in values.items()} for name, values in floor.items()}
    result["ceiling_unrelated_clips"] = {
        metric: interval([distance(clips[i][1], clips[(i + 1) % len(clips)][1]) for i in range(len(clips))])
        for metric, distance in metrics.items()}
    return result


def real_time_factor(codec: Codec, k: int, seconds: float = 10.0, runs: int = 5) -> float:
    codes = torch.randint(0, codec.card, (1, k, round(seconds * codec.frame_rate)), generator=torch.Generator().manual_seed(0))
    codec.decode(codes)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        codec.decode(codes)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) / seconds, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("/work/data/demo"), help="demo dataset (its test split)")
    parser.add_argument("--vocoder", type=Path, default=DEFAULT_CODEC_DIR, help="learned decoder directory "
                        "(vocoder.json + vocoder.safetensors; default: the shipped one)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-clips", type=int, default=0, help="per set, 0 = all (a smaller number: a quick check)")
    parser.add_argument("--out", type=Path, default=Path("results/decoder_compare.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    codecs = decoders(args.vocoder)
    rate = codecs["griffin-lim"].sample_rate
    sets = clip_sets(args.demo if args.demo.is_dir() else None, args.seconds, rate)
    results = {"command": "python " + " ".join(sys.argv), "threads": torch.get_num_threads(),
               "vocoder": {"dir": str(args.vocoder), **vars(codecs["vocoder"].backend.vocoder.config),
                           "parameters": sum(p.numel() for p in codecs["vocoder"].backend.vocoder.parameters())},
               "metric": "stft_distance: mean over n_fft 512/1024/2048 (hop n/4, Hann) of mean |log10 A - log10 B|, "
                         "magnitudes floored at 1e-5", "sets": {}}
    metrics, results["skipped"] = judges(rate)
    for name, clips in sets.items():
        results["sets"][name] = measure_set(clips[:args.max_clips or None], codecs, rate, metrics)
        print(name, {k: v["stft_distance_ratio_vocoder_over_griffin_lim"]["of_means"]
                     for k, v in results["sets"][name]["by_k"].items()}, flush=True)
    K = codecs["griffin-lim"].n_codebooks
    results["real_time_factor_1_thread"] = {name: {f"k{k}": real_time_factor(codecs[name], k) for k in (1, K)}
                                            for name in ("griffin-lim", "vocoder")}
    results["targets"] = {
        f"{name}_k{K}_stft_ratio_at_most_{TARGET_RATIO}": record["by_k"][f"k{K}"]["stft_distance_ratio_vocoder_over_griffin_lim"]["of_means"] <= TARGET_RATIO
        for name, record in results["sets"].items()}
    results["targets"]["faster_than_real_time_1_thread"] = max(results["real_time_factor_1_thread"]["vocoder"].values()) < 1
    write_json_atomic(args.out, results)
    print(results["real_time_factor_1_thread"], results["targets"])


if __name__ == "__main__":
    with torch.inference_mode():
        main()
