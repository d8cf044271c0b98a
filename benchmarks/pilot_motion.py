"""Does a trained model's music move? Its sampled codes against the real clips of the same captions.

For the first N captions of a token dataset's split (valid by default: the split choices are made
on), sample `--seconds` of codes per seed and temperature and count, on the first codebook, the
longest run of identical frames (seconds), the share of frames repeating the one before and the
distinct tokens per clip (ssmusic.metrics.motion) — the same counts on the real clips' codes beside
them. A quick check for pilot runs (no decoding, no judges of the audio).

    python benchmarks/pilot_motion.py /work/runs/pilot_s6 /work/data/demo2_tokens --prompts 12 \
        --temperatures 0.7,1.0 --seeds 0,1,2 --out /work/runs/pilot_s6/motion.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def medians(rows: list[dict]) -> dict:
    return {key: round(float(np.median([r[key] for r in rows])), 4) for key in rows[0]}


def main(argv: list[str] | None = None) -> int:
    from ssmusic.data.datasets import load_manifest
    from ssmusic.metrics.motion import token_motion
    from ssmusic.pipeline import TextToMusic

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model or training run directory")
    parser.add_argument("data_dir", help="the token dataset whose captions and codes are the reference")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--temperatures", default="0.7,1.0")
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = Path(args.data_dir)
    frame_rate = load_manifest(data)["frame_rate"]
    lines = [json.loads(line) for line in (data / args.split / "captions.jsonl").open(encoding="utf-8")]
    index = np.linspace(0, len(lines) - 1, min(args.prompts, len(lines))).round().astype(int)
    captions = [lines[i]["caption"] for i in index]
    codes = np.load(data / args.split / "codes.npy", mmap_mode="r")
    frames = int(round(args.seconds * frame_rate))
    real = [token_motion(np.asarray(codes[i, :1, :frames]), frame_rate) for i in index]
    model = TextToMusic.from_pretrained(args.model)
    result = {"command": " ".join(["python", *sys.argv]), "model": args.model, "split": args.split,
              "captions": captions, "real": {"median": medians(real), "per_clip": real}, "generated": {}}
    for temperature in [float(t) for t in args.temperatures.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            sampling = model.sampling(temperature=temperature, cfg_scale=args.cfg, seed=seed)
            generated = model.generate_codes(captions, args.seconds, sampling).numpy()
            rows = [token_motion(g[:1], frame_rate) for g in generated]
            result["generated"][f"T{temperature}/seed{seed}"] = {"median": medians(rows), "per_clip": rows}
            print(f"T {temperature} seed {seed}: {medians(rows)}  (real {medians(real)})", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
