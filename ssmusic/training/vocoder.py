"""Train the codec's learned decoder (ssmusic.codec.vocoder) on CPU, resumably.

    ssmusic codec train-decoder --demo DEMO_DIR --out RUN_DIR [--steps 6000] [--threads 1]

The input is what decoding sees: the sum of the first k codewords of the codec's codes (k drawn per
row, so one decoder serves every codebook count), the target the original audio. Losses: a
multi-resolution STFT loss (log-magnitude L1 + spectral convergence) at 384/768/1536 -- sizes
other than the 512/1024/2048 of the evaluation's STFT distance, so that figure is not the training
objective -- and an L1 loss on the codec's own log-mel. RUN_DIR keeps the corpus, a checkpoint
(weights, optimizer, RNG states, step) every --checkpoint-every steps, metrics.jsonl, and the
validation STFT distance every --eval-every steps beside Griffin-Lim's on the same segments.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

from ssmusic.codec.vocoder import Vocoder, VocoderConfig
from ssmusic.errors import SsmusicError
from ssmusic.training.vocoder_config import DecoderTrainConfig

LOSS_SIZES = DecoderTrainConfig.loss_sizes


def stft_loss(estimate: torch.Tensor, target: torch.Tensor, sizes: tuple[int, ...] = LOSS_SIZES) -> torch.Tensor:
    """Mean over sizes of L1(log magnitudes) + spectral convergence (Yamamoto et al. 2020)."""
    total = estimate.new_zeros(())
    for n in sizes:
        window = torch.hann_window(n, device=estimate.device)
        a, b = (torch.stft(x, n, n // 4, window=window, return_complex=True).abs() for x in (estimate, target))
        log_l1 = (torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean()
        convergence = torch.linalg.norm(a - b) / torch.linalg.norm(b).clamp(min=1e-5)
        total = total + log_l1 + convergence
    return total / len(sizes)


def k_probs(config: DecoderTrainConfig, codebooks: int) -> torch.Tensor:
    if codebooks == 1:
        return torch.ones(1)
    probs = torch.full((codebooks,), (1 - 2 * config.k_first_last) / max(1, codebooks - 2))
    probs[0] = probs[-1] = config.k_first_last
    return probs


def masked_mel(codec, codes: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The decoder's input: per row, the sum of its first k[row] codewords ([B, T, n_mels])."""
    backend = codec.backend
    keep = (torch.arange(codes.shape[1])[None] < k[:, None]).float()  # [B, K]
    words = torch.stack([backend.codebooks[j][codes[:, j]] for j in range(codes.shape[1])], dim=1)  # [B, K, T, D]
    return (words * keep[:, :, None, None]).sum(1)


def loss_of(model: Vocoder, codec, codes: torch.Tensor, audio: torch.Tensor, k: torch.Tensor,
            config: DecoderTrainConfig) -> tuple[torch.Tensor, dict]:
    """Losses on the segment's middle: the first and last two frames lack the iSTFT's overlap."""
    edge = 2 * codec.samples_per_frame
    estimate = model(masked_mel(codec, codes, k))[:, edge:-edge]
    target = audio[:, edge:-edge]
    spectral = stft_loss(estimate, target, tuple(config.loss_sizes))
    mel = (codec.backend.features(estimate) - codec.backend.features(target)).abs().mean()
    return spectral + config.mel_weight * mel, {"stft": float(spectral.detach()), "mel": float(mel.detach())}


@torch.no_grad()
def validate(decode, segments: list, codebooks: int) -> dict:
    """Mean STFT distance (ssmusic.metrics.reconstruction) per pool at k = 1 and k = K; `decode`
    maps codes [1, k, T] to audio [T * hop]."""
    from ssmusic.metrics.reconstruction import stft_distance

    out = {}
    for k in sorted({1, codebooks}):
        for pool in sorted({p for p, _, _ in segments}):
            values = [stft_distance(audio, decode(codes[None, :k])) for p, codes, audio in segments if p == pool]
            out[f"{pool}_k{k}"] = round(sum(values) / len(values), 4)
    return out


def lr_at(step: int, config: DecoderTrainConfig) -> float:
    """Linear warm-up, then a cosine to a tenth of the peak at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


def save_state(run: Path, model: Vocoder, optimizer, step: int, generator: torch.Generator) -> None:
    from ssmusic.io.atomic import atomic_dir, write_json_atomic
    from ssmusic.io.tensors import save_tensors
    from ssmusic.training.checkpoint import capture_rng, optimizer_to_tensors

    with atomic_dir(run / "checkpoint") as tmp:
        model.save(tmp, dtype=torch.float32)
        tensors, plain = optimizer_to_tensors(optimizer)
        rng = capture_rng(torch.device("cpu"), {"sampler": generator})
        save_tensors({**{f"optimizer.{k}": v for k, v in tensors.items()},
                      **{f"rng.{k}": v for k, v in rng.items()}}, tmp / "state.safetensors")
        write_json_atomic(tmp / "trainer_state.json", {"step": step, "optimizer": plain})


def load_state(run: Path, model: Vocoder, optimizer, generator: torch.Generator) -> int:
    """Restore the checkpoint in RUN_DIR, if any; -> the step to continue from."""
    from ssmusic.io.atomic import read_json
    from ssmusic.io.tensors import load_tensors
    from ssmusic.training.checkpoint import optimizer_from_tensors, restore_rng

    if not (run / "checkpoint" / "trainer_state.json").is_file():
        return 0
    model.load_state_dict(Vocoder.load(run / "checkpoint").state_dict())
    tensors = load_tensors(run / "checkpoint" / "state.safetensors")
    state = read_json(run / "checkpoint" / "trainer_state.json")
    optimizer_from_tensors(optimizer, {k[10:]: v for k, v in tensors.items() if k.startswith("optimizer.")},
                           state["optimizer"])
    restore_rng({k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}, torch.device("cpu"),
                {"sampler": generator})
    return int(state["step"])


def model_config(config: DecoderTrainConfig, codec, corpus) -> VocoderConfig:
    """The decoder's shape from --model overrides, the codec's rates and the training mels' statistics."""
    backend = codec.backend
    sample = backend.dequantize(corpus.codes[:, ::7][None].long())  # every 7th frame, all codebooks
    known = {f.name for f in fields(VocoderConfig)}
    unknown = sorted(set(config.model) - known)
    if unknown:
        raise SsmusicError(f"--model: unknown field(s) {unknown}; known: {sorted(known)}")
    return VocoderConfig(**{"sample_rate": codec.sample_rate, "hop": codec.samples_per_frame,
                            "n_fft": 4 * codec.samples_per_frame, "n_mels": backend.config.n_mels,
                            "input_mean": round(float(sample.mean()), 4), "input_std": round(float(sample.std()), 4),
                            **config.model})


def train(config: DecoderTrainConfig, run: Path, codec=None, progress: bool = True) -> Path:
    """Train into RUN_DIR (resuming from its checkpoint); -> RUN_DIR/checkpoint."""
    from tqdm import tqdm

    from ssmusic.codec.codecs import load_codec
    from ssmusic.io.atomic import write_json_atomic
    from ssmusic.training.vocoder_data import build_corpus, fixed_segments, sample_batch, sources

    torch.set_num_threads(config.threads)
    codec = codec or load_codec(decoder="griffin-lim")
    run.mkdir(parents=True, exist_ok=True)
    saved = run / "train_config.json"
    if saved.is_file() and json.loads(saved.read_text()) != json.loads(json.dumps(asdict(config))):
        raise SsmusicError(f"{saved}: this run was started with other settings; use a new --out or the same flags")
    write_json_atomic(saved, asdict(config))
    where = Path(config.corpus) if config.corpus else run
    corpus = build_corpus(sources(config.demo, "train", config.real), codec, where / "corpus_train.safetensors", progress)
    valid = fixed_segments(build_corpus(sources(config.demo, "valid", config.real), codec,
                                        where / "corpus_valid.safetensors", progress),
                           config.eval_segments, round(config.eval_seconds * codec.frame_rate))
    if not valid:
        raise SsmusicError(f"vocoder valid split: no track of {config.eval_seconds} s to validate on")
    torch.manual_seed(config.seed)
    if config.init:  # continue another run's decoder under a new schedule (its shape and input statistics)
        model = Vocoder.load(config.init).train()
    else:
        model = Vocoder(model_config(config, codec, corpus)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.8, 0.99), weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    step = load_state(run, model, optimizer, generator)
    probs = k_probs(config, codec.n_codebooks)
    log = (run / "metrics.jsonl").open("a")
    if step == 0 and not (run / "valid_griffin_lim.json").is_file():
        gl = validate(lambda c: codec.decode(c)[0, 0], valid, codec.n_codebooks)
        write_json_atomic(run / "valid_griffin_lim.json", gl)
    bar = tqdm(total=config.steps, initial=step, desc="decoder", disable=not progress, mininterval=10)
    started = time.perf_counter()
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        codes, audio, k = sample_batch(corpus, config.batch_size, config.segment_frames, generator, probs)
        loss, parts = loss_of(model, codec, codes, audio, k, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        record = {"step": step, "loss": round(float(loss), 4), **{k: round(v, 4) for k, v in parts.items()},
                  "seconds": round(time.perf_counter() - started, 1)}
        if step % config.eval_every == 0 or step == config.steps:
            model.eval()
            record["valid"] = validate(lambda c: model(codec.backend.dequantize(c))[0], valid, codec.n_codebooks)
            model.train()
            bar.write(json.dumps(record))
        log.write(json.dumps(record) + "\n")
        log.flush()
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_state(run, model, optimizer, step, generator)
    bar.close()
    return run / "checkpoint"


def install(checkpoint: Path, codec_dir: Path, make_default: bool = True) -> None:
    """Put the decoder in `checkpoint` beside the mel codec's codebooks in `codec_dir` (float16
    weights; decoding computes in float32), and with `make_default` set codec.json's decoder to
    "vocoder" (else the codec keeps its default and the decoder is chosen with decoder="vocoder")."""
    from dataclasses import replace

    from ssmusic.codec.transform import TransformCodec
    from ssmusic.io.atomic import read_json

    current = read_json(codec_dir / "codec.json").get("decoder", "griffin-lim")
    base = TransformCodec.load(codec_dir, decoder="griffin-lim")
    vocoder = Vocoder.load(checkpoint)
    if vocoder.config.n_mels != base.config.n_mels or vocoder.config.hop != base.config.hop:
        raise SsmusicError(f"{checkpoint}: a decoder for {vocoder.config.n_mels} mels / hop {vocoder.config.hop} "
                           f"cannot decode {codec_dir} ({base.config.n_mels} mels / hop {base.config.hop})")
    config = replace(base.config, decoder="vocoder" if make_default else current)
    TransformCodec(replace(base.config, decoder="vocoder"), base.codebooks, base.scale, vocoder).save(codec_dir)
    if config.decoder != "vocoder":
        from ssmusic.io.atomic import write_json_atomic

        write_json_atomic(codec_dir / "codec.json", asdict(config))


def run(args: argparse.Namespace) -> int:
    from ssmusic.training.vocoder_config import config_from_args

    out = train(config_from_args(args), Path(args.out))
    print(f"decoder checkpoint: {out} (vocoder.json + vocoder.safetensors, float32)")
    if args.install:
        install(out, Path(args.install), args.make_default)
        print(f"installed beside {args.install}'s codebooks (float16 weights)"
              + (", as its default decoder" if args.make_default else "; choose it with --decoder vocoder"))
    return 0
