"""Time to first audio and real-time factor of TextToMusic.stream on this machine.

    python benchmarks/stream_speed.py [--models shipped,shipped-griffin-lim,dac44k] [--seconds 10]
        [--chunk-seconds 0.5] [--runs 3] [--out results/stream_speed.json]

shipped: the default model (the shipped SiMBA over the mel codec's first codebook, 43 frames/s), decoded by
         the codec's default decoder (its learned decoder); shipped-griffin-lim: the same decoded by
         Griffin-Lim.
dac44k:  the same LM architecture with random weights over DAC-44k's first codebook (card 1024,
         86 frames/s; the papers' setting), decoded by DAC-44k's architecture with random weights.
Per model: after a warm-up (which also measures the codec's stream context, cached on disk), the
median over runs of: time to the first chunk, total time and real-time factor of a stream; the
LM alone (generate_codes); and one-shot generate() (time until any audio without streaming).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from stream_codecs import dac_44k  # noqa: E402

from ssmusic.pipeline import TextToMusic  # noqa: E402

PROMPT = "a lively jig on the violin"


def dac44k_model() -> TextToMusic:
    from dataclasses import replace

    from ssmusic.config import PipelineConfig
    from ssmusic.model.lm import MusicLM

    shipped = TextToMusic.from_pretrained()
    codec = dac_44k()
    torch.manual_seed(0)
    lm = MusicLM(replace(shipped.lm.config, card=codec.card, n_codebooks=1)).eval()
    config = PipelineConfig(codec=codec.name, text_encoder=shipped.config.text_encoder,
                            sample_rate=codec.sample_rate, frame_rate=codec.frame_rate, card=codec.card,
                            n_codebooks=1, text_dim=shipped.config.text_dim, clip_seconds=30.0,
                            cfg_scale=3.0, temperature=1.0, top_k=250)
    return TextToMusic(lm, codec, shipped.text_encoder, config)


def one_stream(model: TextToMusic, seconds: float, chunk_seconds: float, seed: int) -> dict:
    start = time.perf_counter()
    first, samples, chunks = None, 0, 0
    for chunk in model.stream([PROMPT], seconds=seconds, chunk_seconds=chunk_seconds, seed=seed):
        if first is None and chunk.audio.shape[-1]:
            first = time.perf_counter() - start
        samples += chunk.audio.shape[-1]
        chunks += 1
    total = time.perf_counter() - start
    audio_seconds = samples / model.sample_rate
    return {"time_to_first_audio_s": first, "total_s": total, "audio_s": audio_seconds,
            "real_time_factor": total / audio_seconds, "chunks": chunks}


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def bench(name: str, seconds: float, chunk_seconds: float, runs: int) -> dict:
    if name in ("shipped", "shipped-griffin-lim"):
        model = TextToMusic.from_pretrained(decoder="griffin-lim" if name == "shipped-griffin-lim" else None)
    else:
        model = dac44k_model()
    from ssmusic.codec.stream import stream_context

    context = stream_context(model.codec)
    one_stream(model, 1.0, chunk_seconds, seed=99)  # warm-up
    streams = [one_stream(model, seconds, chunk_seconds, seed) for seed in range(runs)]
    lm_only = [timed(lambda s=s: model.generate_codes([PROMPT], seconds=seconds, sampling=model.sampling(seed=s))) for s in range(runs)]
    one_shot = [timed(lambda s=s: model.generate([PROMPT], seconds=seconds, seed=s)) for s in range(runs)]
    median = lambda key: statistics.median(r[key] for r in streams)  # noqa: E731
    record = {
        "model": name, "lm_parameters": model.lm.num_parameters(), "codec": model.codec.name,
        "decoder": getattr(getattr(model.codec.backend, "config", None), "decoder", None),
        "frame_rate": model.config.frame_rate, "context_frames": vars(context),
        "seconds": seconds, "chunk_seconds": chunk_seconds, "runs": streams,
        "median": {"time_to_first_audio_s": median("time_to_first_audio_s"), "total_s": median("total_s"),
                   "real_time_factor": median("real_time_factor"),
                   "lm_only_s": statistics.median(lm_only), "lm_only_real_time_factor": statistics.median(lm_only) / seconds,
                   "one_shot_generate_s": statistics.median(one_shot)},
    }
    print(name, json.dumps(record["median"]), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="shipped,dac44k")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk-seconds", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/stream_speed.json"))
    args = parser.parse_args()
    results = {"command": "python " + " ".join(sys.argv), "torch_threads": torch.get_num_threads(),
               "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
               "models": {name: bench(name, args.seconds, args.chunk_seconds, args.runs)
                          for name in args.models.split(",")}}
    from ssmusic.config import write_json_atomic

    write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
