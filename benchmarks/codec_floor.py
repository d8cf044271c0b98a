"""The best a model of the first k codebooks can sound, by every judge: the real clips of a split
re-encoded with the codec and decoded from their own first k codebooks, judged like generated audio.

    python benchmarks/codec_floor.py data/demo --split test --codebooks 1 --work runs/codec_floor
    # then: ssmusic evaluate runs/codec_floor --reference data/demo --split test \
    #           --out results/codec_floor_test.json

A generator that models k codebooks of this codec cannot beat these figures (a perfect one would
reproduce its clips' own tokens), so they sit between the real-vs-real floors and the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from ssmusic.codec.codecs import load_codec
from ssmusic.io.atomic import write_json_atomic
from ssmusic.io.audio import read_audio, write_wav
from ssmusic.metrics.evaluate import collect_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--codebooks", type=int, default=1)
    parser.add_argument("--codec", default=None)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    codec = load_codec(args.codec)
    args.work.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(tqdm(collect_rows(args.data_dir, args.split), desc="re-encode")):
        wav, _ = read_audio(row["path"], codec.sample_rate, mono=True)
        codes = codec.encode(wav, codec.sample_rate)[:, : args.codebooks]
        audio = codec.decode(codes)[0, :, : wav.shape[-1]]
        write_wav(args.work / f"{i:02d}.wav", audio, codec.sample_rate)
        write_json_atomic(args.work / f"{i:02d}.json", {"prompt": row["caption"], "source": str(row["path"]),
                                                        "codec": codec.name, "codebooks": args.codebooks})


if __name__ == "__main__":
    main()
