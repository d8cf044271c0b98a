"""Training and generation speed of candidate model sizes on this CPU, measured side by side.

Each candidate (an LMConfig of the `small` preset with overrides) is timed for training steps
(forward, backward, AdamW; random codes and caption embeddings of the real shapes) and for
generating 10 s with classifier-free guidance (the decode loop alone: no text encoder, no codec).
The candidates take turns, round after round, so a noisy shared machine slows them alike; the
medians and their ratios are what to read.

    python benchmarks/train_speed.py --threads 1 --rounds 3 --out results/train_speed_demo2.json \
        --candidate d256x8-pooled:d_model=256,n_layers=8,conditioning=pooled ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from ssmusic.io.atomic import write_json_atomic
from ssmusic.model.lm import MusicLM, token_loss
from ssmusic.model.presets import preset
from ssmusic.model.sampling import SamplingParams

FRAME_RATE = 22050 / 512


def parse_candidate(text: str) -> tuple[str, dict]:
    name, _, fields = text.partition(":")
    overrides = {}
    for item in filter(None, fields.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = int(value) if value.lstrip("-").isdigit() else value == "true" if value in ("true", "false") \
            else value
    return name, overrides


def train_seconds(model: MusicLM, optimizer, batch: int, frames: int, steps: int) -> float:
    """Median seconds of one training step."""
    config = model.config
    codes = torch.randint(0, config.card, (batch, config.n_codebooks, frames))
    text, mask = torch.randn(batch, 40, config.text_dim), torch.ones(batch, 40, dtype=torch.bool)
    null = torch.zeros(batch, dtype=torch.bool)
    times = []
    model.train()
    for _ in range(steps + 1):
        started = time.perf_counter()
        loss = token_loss(model(codes, text, mask, null), codes, model.pad_id, 0.1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def generate_seconds(model: MusicLM, seconds: float) -> float:
    """Seconds to sample `seconds` of frames for one prompt with CFG 3 (a doubled batch)."""
    text, mask = torch.randn(1, 30, model.config.text_dim), torch.ones(1, 30, dtype=torch.bool)
    started = time.perf_counter()
    model.generate(text, mask, int(round(seconds * FRAME_RATE)), SamplingParams(cfg_scale=3.0, temperature=0.7, seed=0))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", action="append", required=True, metavar="NAME:FIELD=VALUE,...")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=216)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--generate-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {}
    for text in args.candidate:
        name, overrides = parse_candidate(text)
        model = MusicLM(preset("small", **overrides))
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4), overrides)
    train, generate = {n: [] for n in models}, {n: [] for n in models}
    for round_ in range(args.rounds):
        for name, (model, optimizer, _) in models.items():
            train[name].append(train_seconds(model, optimizer, args.batch_size, args.frames, args.steps))
            generate[name].append(generate_seconds(model, args.generate_seconds))
            print(f"round {round_} {name}: {train[name][-1]:.3f} s/step, {generate[name][-1]:.2f} s to generate",
                  flush=True)
    rows = {}
    for name, (model, _, overrides) in models.items():
        step = statistics.median(train[name])
        frames = args.batch_size * args.frames
        rows[name] = {"overrides": overrides, "parameters": model.num_parameters(),
                      "fp16_mb": round(model.num_parameters() * 2 / 1e6, 1), "train_s_per_step": round(step, 4),
                      "frames_per_s": round(frames / step, 1),
                      "tokens_per_s": round(frames * model.config.n_codebooks / step, 1),
                      "generate_s": round(statistics.median(generate[name]), 2),
                      "train_runs": [round(x, 4) for x in train[name]], "generate_runs": [round(x, 3) for x in generate[name]]}
    result = {"command": " ".join(["python", *sys.argv]), "threads": args.threads, "batch_size": args.batch_size,
              "frames": args.frames, "rounds": args.rounds, "generate_seconds": args.generate_seconds, "rows": rows}
    write_json_atomic(Path(args.out), result)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
