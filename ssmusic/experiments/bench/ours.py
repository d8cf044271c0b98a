"""Our model's measurements for `ssmusic bench`: a decode step at a given position, the released
code's loop around our model, generation end to end, training throughput and the FLOP count.

Positions: the cost of a step at position P does not depend on the state's values, only on its
size. An SSM state has the same size at every position, so it is filled with random values and the
step is fed position P (its sinusoidal encoding); a Transformer's KV cache is filled with P random
keys/values, which cost the same per step as real ones. Peak memory is therefore the decode state's
(plus weights), not a prefill's. Real generation over 2,588 tokens is timed by `end_to_end`.
"""

from __future__ import annotations

import statistics
import time

import torch

from ssmusic.model import presets
from ssmusic.experiments.bench.timing import DAC44K_FRAME_RATE, sync
from ssmusic.model.layers import SelfAttention
from ssmusic.model.lm import MusicLM
from ssmusic.model.mamba2 import Mamba2
from ssmusic.model.sampling import SamplingParams, sample_next


def _model(backbone: str, preset: str, device: str, **overrides) -> MusicLM:
    torch.manual_seed(0)
    config = presets.preset(preset, backbone=backbone, dropout=0.0, **overrides)
    return MusicLM(config).to(device).eval()


def _condition(model, rows: int, text_len: int = 16):
    text = torch.randn(rows, text_len, model.config.text_dim, device=model.null.device)
    null = torch.arange(rows, device=text.device) >= rows // 2  # CFG: conditional + null rows
    return model.condition(text, None, null, rows)


@torch.inference_mode()
def decode(backbone: str, preset: str, position: int, steps: int, device: str = "cpu") -> dict:
    """Median ms per generated token at `position`, CFG batch 2 (one prompt), full sampling step."""
    model = _model(backbone, preset, device)
    cond, mask = _condition(model, 2)
    if backbone == "transformer":
        h, state = model.prefill(cond, mask, position + steps + 8)
        for block in state.blocks:  # a KV cache: fill `position` entries
            cache = block.mixer
            start = cache.window
            cache.k[:, :, start:start + position].normal_()
            cache.v[:, :, start:start + position].normal_()
            cache.key_mask[:, start:start + position] = True
            cache.length.add_(position)
            cache.window = start + position
    else:  # an SSM state has the same size at every position: fill it instead of prefilling P tokens
        h, state = model.prefill(cond, mask, steps + 8)
        for block in state.blocks:
            for ssm in (block.mixer, block.channel_mixer):
                if ssm is not None:
                    ssm.conv.normal_()
                    ssm.ssm.normal_(std=0.1)
    state.position.add_(position)
    generator = torch.Generator(device=device).manual_seed(0)
    times = []
    for t in range(steps + 3):
        sync(device)
        started = time.perf_counter()
        logits = model._logits(h).float()
        guided = logits[:1] + 2.0 * (logits[:1] - logits[1:])
        token = sample_next(guided, 250, 0.0, 1.0, generator)
        h = model.step(torch.cat([token, token]), state)
        sync(device)
        if t >= 3:
            times.append(time.perf_counter() - started)
    return {"ms_per_step": 1000 * statistics.median(times), "parameters": model.num_parameters()}


@torch.inference_mode()
def released_loop(preset: str, position: int, repeats: int, device: str = "cpu") -> dict:
    """Our SiMBA in the released SSM-TTM code's generation loop, which re-runs the whole sequence
    for every new token: ms per token at `position`."""
    model = _model("simba", preset, device)
    text = torch.randn(2, 16, model.config.text_dim, device=device)
    codes = torch.randint(0, model.config.card, (2, 1, position), device=device)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        started = time.perf_counter()
        model(codes, text, None)
        sync(device)
        times.append(time.perf_counter() - started)
    return {"ms_per_step": 1000 * statistics.median(times[1:])}


@torch.inference_mode()
def end_to_end(preset: str, frames: int, device: str = "cpu") -> dict:
    """MusicLM.generate (SiMBA, random weights) for `frames` tokens with CFG: what a user waits for,
    minus the codec (see dac_decode) and the text encoder."""
    model = _model("simba", preset, device)
    text = torch.randn(1, 16, model.config.text_dim, device=device)
    sync(device)
    started = time.perf_counter()
    model.generate(text, None, steps=frames, sampling=SamplingParams(cfg_scale=3.0, top_k=250, seed=0))
    sync(device)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "frames": frames, "audio_s": frames / DAC44K_FRAME_RATE,
            "real_time_factor": wall / (frames / DAC44K_FRAME_RATE)}


def training(backbone: str, preset: str, seq_len: int, repeats: int, device: str = "cpu") -> dict:
    """Forward + backward tokens/s, batch 1, one codebook."""
    model = _model(backbone, preset, device)
    model.train()
    codes = torch.randint(0, model.config.card, (1, 1, seq_len), device=device)
    text = torch.randn(1, 16, model.config.text_dim, device=device)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        started = time.perf_counter()
        model.loss(codes, text, None).backward()
        sync(device)
        times.append(time.perf_counter() - started)
    return {"tokens_per_s": seq_len / statistics.median(times[1:])}


def decode_flops(backbone: str, preset: str, position: int) -> float:
    """Multiply-adds x 2 per generated token for one row: weights touched once per token, plus the
    SSM state update/read-out or attention over `position` cached keys."""
    model = _model(backbone, preset, "meta")
    c = model.config
    flops = 2 * sum(p.numel() for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed"))
    for block in model.blocks:
        for layer in (block.mixer, block.channel_mixer):
            if isinstance(layer, Mamba2):
                flops += 4 * c.expand * c.d_model * c.d_state  # decay+input, read-out
            if isinstance(layer, SelfAttention):
                flops += 4 * position * c.d_model  # q.k and weights.v
    return float(flops)
