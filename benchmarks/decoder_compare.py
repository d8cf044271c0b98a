"""The mel codec's learned decoder against Griffin-Lim on held-out audio.

    python benchmarks/decoder_compare.py [--demo /work/data/demo] [--vocoder DIR] [--float32 CHECKPOINT]
        [--out results/decoder_compare.json]

Clips: the demo dataset's test split (first 10 s of each clip) and the Debian-packaged real
recordings' held-out test tracks (ssmusic.data.real_music; three 10 s segments per track, at a
quarter, half and three quarters of its length). Each clip is encoded once with all codebooks and
decoded from its first k in {1, K} by both decoders. Per clip set, k and decoder: the multi-resolution
log-magnitude STFT distance (ssmusic.metrics.reconstruction.stft_distance; n_fft 512/1024/2048) and
the 80-band log-mel distance to the original, mean with a 95% bootstrap interval over clips, and the
ratio learned / Griffin-Lim (of the means, and the mean of per-clip ratios). Beside them:
- floor: each decoder on the unquantised mel (what the decoder alone loses);
- ceiling: the distance between two unrelated clips of the set (clip i against clip i + n/2, so
  another track);
- float16 weights against float32 (`--float32 CHECKPOINT`: the float32 checkpoint beside the
  shipped float16 file);
- real-time factor of each decoder on ONE thread (10 s of codes, k = 1 and K, median of 5);
- the music network's judgement (musicnn, as `ssmusic codebooks` uses it): embedding distance
  (1 - cosine), tag KL and top-instrument-tag agreement with the original (skipped, with the
  reason, where the network cannot load).
"""

from __future__ import annotations

import argparse
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
from ssmusic.metrics.statistics import describe

TARGET_RATIO = 0.75


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


def decoders(vocoder_dir: Path, float32_dir: Path | None) -> dict[str, Codec]:
    """Griffin-Lim, the learned decoder in `vocoder_dir` (as stored: the shipped one is float16) and,
    with `float32_dir`, the float32 checkpoint it was made from (what float16 storage costs)."""
    from dataclasses import replace

    base = TransformCodec.load(DEFAULT_CODEC_DIR, decoder="griffin-lim")
    learned = replace(base.config, decoder="vocoder")
    codecs = {"griffin-lim": Codec(base, base.name),
              "vocoder": Codec(TransformCodec(learned, base.codebooks, vocoder=Vocoder.load(vocoder_dir)), base.name)}
    if float32_dir is not None:
        full = Vocoder.load(float32_dir)
        codecs["vocoder_float32"] = Codec(TransformCodec(learned, base.codebooks, vocoder=full), base.name)
    return codecs


def network(originals: list[torch.Tensor], rate: int):
    """The music network (ssmusic.experiments.codebook_controls: musicnn, as `ssmusic codebooks`
    judges reconstructions) and its features of the originals, or (None, reason) when it is missing."""
    from ssmusic.experiments.codebook_controls import load_network, network_features

    tagger, missing = load_network()
    if tagger is None:
        return None, missing
    return (tagger, [network_features(tagger, wav, rate) for wav in originals]), None


def scores(originals: list[torch.Tensor], outputs: list[torch.Tensor], rate: int, judge) -> dict:
    """Distances of `outputs` to `originals` (per-clip mean, bootstrap interval): STFT, log-mel and,
    with the music network, its embedding distance (1 - cosine), tag KL and top-instrument agreement."""
    from ssmusic.experiments.codebook_controls import network_features, network_scores

    out = {"stft_distance": describe([stft_distance(a, b) for a, b in zip(originals, outputs)]),
           "mel_distance": describe([mel_distance(a, b, rate) for a, b in zip(originals, outputs)])}
    if judge is not None:
        tagger, reference = judge
        net = network_scores(reference, [network_features(tagger, wav, rate) for wav in outputs], tagger.tags)
        cosine = net.pop("network_cosine")
        out["network_distance"] = {**cosine, "value": round(1 - cosine["value"], 4),
                                   "ci95": [round(1 - cosine["ci95"][1], 4), round(1 - cosine["ci95"][0], 4)],
                                   "definition": "1 - cosine of musicnn embeddings (MTT_musicnn penultimate layer)"}
        out.update(net)
    return out


def measure_set(clips: list[tuple[str, torch.Tensor]], codecs: dict[str, Codec], rate: int) -> dict:
    """Per k and decoder: each judge's distance to the original; floors, ceiling, ratios."""
    gl = codecs["griffin-lim"]
    K = gl.n_codebooks
    originals = [wav for _, wav in clips]
    judge, skipped = network(originals, rate)
    outputs = {(k, name): [] for k in (1, K) for name in codecs}
    floors = {name: [] for name in ("griffin-lim", "vocoder")}
    for wav in originals:
        codes = gl.encode(wav[None], rate)
        n = wav.shape[-1]
        for (k, name), decoded in outputs.items():
            decoded.append(codecs[name].decode(codes[:, :k])[0, 0, :n])
        features = gl.backend.features(wav[None])
        for name, decoded in floors.items():
            decoded.append(codecs[name].backend.synthesize(features, codes.shape[-1] * gl.samples_per_frame)[0, :n])
    result = {"clips": len(clips), "names": [name for name, _ in clips], "by_k": {},
              "network_skipped": skipped}
    for k in (1, K):
        entry = {name: scores(originals, outputs[k, name], rate, judge) for name in codecs}
        for metric in ("stft_distance", "mel_distance", "network_distance"):
            if metric in entry["vocoder"]:
                entry[f"{metric}_ratio_vocoder_over_griffin_lim"] = round(
                    entry["vocoder"][metric]["value"] / entry["griffin-lim"][metric]["value"], 4)
        entry["stft_distance_ratio_per_clip"] = describe(
            [stft_distance(w, a) / stft_distance(w, b) for w, a, b in
             zip(originals, outputs[k, "vocoder"], outputs[k, "griffin-lim"])])
        result["by_k"][f"k{k}"] = entry
    result["floor_unquantised_mel"] = {name: scores(originals, decoded, rate, judge) for name, decoded in floors.items()}
    # clip i against clip i + n/2: another track (a real track's three segments are neighbours)
    half = len(originals) // 2
    result["ceiling_unrelated_clips"] = scores(originals, originals[half:] + originals[:half], rate, judge)
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
    parser.add_argument("--float32", type=Path, default=None, metavar="CHECKPOINT", help="the float32 training "
                        "checkpoint of the same decoder, measured beside it (what float16 storage costs)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-clips", type=int, default=0, help="per set, 0 = all (a smaller number: a quick check)")
    parser.add_argument("--out", type=Path, default=Path("results/decoder_compare.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    codecs = decoders(args.vocoder, args.float32)
    rate = codecs["griffin-lim"].sample_rate
    sets = clip_sets(args.demo if args.demo.is_dir() else None, args.seconds, rate)
    results = {"command": "python " + " ".join(sys.argv), "threads": torch.get_num_threads(),
               "vocoder": {"dir": str(args.vocoder), **vars(codecs["vocoder"].backend.vocoder.config),
                           "parameters": sum(p.numel() for p in codecs["vocoder"].backend.vocoder.parameters())},
               "metric": "stft_distance: mean over n_fft 512/1024/2048 (hop n/4, Hann) of mean |log10 A - log10 B|, "
                         "magnitudes floored at 1e-5", "sets": {}}
    for name, clips in sets.items():
        results["sets"][name] = measure_set(clips[:args.max_clips or None], codecs, rate)
        print(name, {k: v["stft_distance_ratio_vocoder_over_griffin_lim"]
                     for k, v in results["sets"][name]["by_k"].items()}, flush=True)
    K = codecs["griffin-lim"].n_codebooks
    results["real_time_factor_1_thread"] = {name: {f"k{k}": real_time_factor(codecs[name], k) for k in (1, K)}
                                            for name in ("griffin-lim", "vocoder")}
    results["targets"] = {
        f"{name}_k{K}_stft_ratio_at_most_{TARGET_RATIO}": record["by_k"][f"k{K}"]["stft_distance_ratio_vocoder_over_griffin_lim"] <= TARGET_RATIO
        for name, record in results["sets"].items()}
    results["targets"]["faster_than_real_time_1_thread"] = max(results["real_time_factor_1_thread"]["vocoder"].values()) < 1
    write_json_atomic(args.out, results)
    print(results["real_time_factor_1_thread"], results["targets"])


if __name__ == "__main__":
    with torch.inference_mode():
        main()
