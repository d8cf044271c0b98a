"""Choose the offline codec by measurement: fit each candidate on training audio, then measure
held-out reconstructions at 1 and 4 codebooks by log-mel distance and SI-SNR.

    python benchmarks/codec_compare.py AUDIO_DIR [--out results.json] [--clip-seconds 10]

AUDIO_DIR is a demo dataset (captions.csv with a split column: fit on train, test on test) or any
directory of audio (files split 80/20 in sorted order). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ssmusic.io.atomic import write_json_atomic
from ssmusic.io.audio import list_audio_files, read_audio
from ssmusic.data.captions import split_paths
from ssmusic.metrics.reconstruction import mel_distance, si_snr
from ssmusic.codec.transform import TransformCodecConfig, fit_codec


def split_files(directory: Path) -> tuple[list[Path], list[Path]]:
    train, test = split_paths(directory, "train"), split_paths(directory, "test")
    if train is not None:
        return train, test
    files = list_audio_files(directory)
    cut = int(0.8 * len(files))
    return files[:cut], files[cut:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--max-test-clips", type=int, default=24)
    parser.add_argument("--codebooks", type=int, default=8)
    args = parser.parse_args()
    fit_files, test_files = split_files(args.audio_dir)
    candidates = {
        "mel-rvq + Griffin-Lim (22.05 kHz, 43 Hz)": TransformCodecConfig(transform="mel", n_codebooks=args.codebooks),
        "mdct-rvq (22.05 kHz, 43 Hz)": TransformCodecConfig(transform="mdct", n_codebooks=args.codebooks,
                                                            name="ssmusic-mdct-22k"),
    }
    rate = 22050
    fit_audio = [read_audio(f, rate, mono=True)[0][0] for f in fit_files]
    n = int(args.clip_seconds * rate)
    test_audio = torch.stack([w[:n] for w in (read_audio(f, rate, mono=True)[0][0] for f in test_files)
                              if w.shape[-1] >= n][: args.max_test_clips])
    print(f"fit: {len(fit_audio)} files, {sum(w.shape[-1] for w in fit_audio) / rate / 60:.1f} min; "
          f"test: {len(test_audio)} clips x {args.clip_seconds:g} s")
    results = []
    for label, config in candidates.items():
        start = time.time()
        codec = fit_codec(fit_audio, config)
        fit_seconds = time.time() - start
        codes = codec.encode_mono(test_audio)
        for k in (1, 4, args.codebooks):
            start = time.time()
            decoded = codec.decode(codes[:, :k])[:, 0, :n]
            results.append({"codec": label, "codebooks": k, "mel_distance": mel_distance(test_audio, decoded, rate),
                            "si_snr_db": si_snr(test_audio, decoded), "fit_seconds": round(fit_seconds, 1),
                            "decode_rtf": (time.time() - start) / (len(test_audio) * args.clip_seconds)})
            print(results[-1], flush=True)
    print("\n| codec | codebooks | mel distance ↓ | SI-SNR (dB) ↑ | decode real-time factor |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['codec']} | {r['codebooks']} | {r['mel_distance']:.3f} | {r['si_snr_db']:.1f} | "
              f"{r['decode_rtf']:.4f} |")
    if args.out:
        write_json_atomic(args.out, {"command": "python benchmarks/codec_compare.py " + str(args.audio_dir),
                                     "fit_files": len(fit_files), "test_clips": len(test_audio), "rows": results})


if __name__ == "__main__":
    main()
