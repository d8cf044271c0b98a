"""Peers for `ssmusic bench`, from transformers with random weights: MusicGen's decoder and Mamba2
at our model's size, and DAC 44.1 kHz decoding."""

from __future__ import annotations

import contextlib
import inspect
import statistics
import time

import torch

from ssmusic.experiments.bench.timing import DAC44K_FRAME_RATE, sync


@torch.inference_mode()
def dac_decode(seconds: float, device: str = "cpu") -> dict:
    """transformers' DacModel with dac_44khz's architecture (random weights): codes -> waveform."""
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    model = DacModel(DacConfig(sampling_rate=44100)).to(device).eval()
    frames = round(seconds * DAC44K_FRAME_RATE)
    codes = torch.randint(0, 1024, (1, 9, frames), device=device)
    sync(device)
    started = time.perf_counter()
    model.decode(audio_codes=codes)
    sync(device)
    return {"wall_s": time.perf_counter() - started, "audio_s": seconds,
            "parameters": sum(p.numel() for p in model.parameters())}


def _timed_generate(model, inputs: dict, new_tokens: int) -> list[float]:
    """transformers .generate with a logits processor that stamps every step."""
    from transformers import LogitsProcessor, LogitsProcessorList

    stamps: list[float] = []

    class Stamp(LogitsProcessor):
        def __call__(self, input_ids, scores):
            stamps.append(time.perf_counter())
            return scores

    model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, top_k=250,
                   logits_processor=LogitsProcessorList([Stamp()]))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def _musicgen_config(preset: str, max_tokens: int):
    """transformers' MusicGen decoder at our width, one codebook (the papers' setting, as ours), its own
    4x FFN, and the depth whose parameter count is closest to our SiMBA's at the preset."""
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from ssmusic.model import presets

    ours = presets.preset(preset)
    target = presets.count_parameters(ours)

    def config(layers: int) -> MusicgenDecoderConfig:
        # as MusicGen: the pad/start id is `vocab_size`, one past the codes (its embedding has a row for it)
        return MusicgenDecoderConfig(vocab_size=ours.card, hidden_size=ours.d_model, num_hidden_layers=layers,
                                     num_attention_heads=ours.n_heads, ffn_dim=4 * ours.d_model, num_codebooks=1,
                                     max_position_embeddings=max(4096, max_tokens), pad_token_id=ours.card,
                                     bos_token_id=ours.card, decoder_start_token_id=ours.card)

    def size(layers: int) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in MusicgenForCausalLM(config(layers)).parameters())

    return config(presets.depth_for(target, size))


@torch.inference_mode()
def musicgen(preset: str, new_tokens: int, device: str = "cpu") -> dict:
    """transformers' MusicGen decoder of our SiMBA's size (random weights), CFG batch 2; self- and
    cross-attention caches kept apart (see docs/performance.md)."""
    from transformers import MusicgenForCausalLM
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    config = _musicgen_config(preset, new_tokens + 16)
    torch.manual_seed(0)
    model = MusicgenForCausalLM(config).to(device).eval()
    start = torch.full((2, 1), config.pad_token_id, dtype=torch.long, device=device)
    text = torch.randn(2, 16, config.hidden_size, device=device)
    # the cache argument was renamed within transformers 5 (past_key_values in 5.17, cache in 5.24)
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    inputs = {"input_ids": start, "encoder_hidden_states": text,
              cache_arg: EncoderDecoderCache(DynamicCache(), DynamicCache()), "num_return_sequences": 1}
    steps = _timed_generate(model, inputs, new_tokens)
    return {"ms_per_step_first_100": 1000 * statistics.median(steps[:100]),
            "ms_per_step_last_100": 1000 * statistics.median(steps[-100:]), "total_s": sum(steps),
            "parameters": sum(p.numel() for p in model.parameters()), "layers": config.num_hidden_layers}


@contextlib.contextmanager
def transformers_mamba2_scan_in_pytorch():
    """transformers' Mamba2 with its own PyTorch scan functions: it swaps them for mamba-ssm's Triton
    kernels whenever mamba-ssm imports, whatever the tensors' device, and Triton cannot read CPU
    tensors (found on a GPU machine with mamba-ssm installed)."""
    from transformers.models.mamba2 import modeling_mamba2

    swapped = {name: fn for name, fn in vars(modeling_mamba2).items()
               if name.startswith("mamba2_") and callable(getattr(fn, "__wrapped__", None))}
    try:
        for name, fn in swapped.items():
            setattr(modeling_mamba2, name, fn.__wrapped__)
        yield
    finally:
        for name, fn in swapped.items():
            setattr(modeling_mamba2, name, fn)


@torch.inference_mode()
def mamba2_peer(preset: str, new_tokens: int, device: str = "cpu") -> dict:
    """transformers' Mamba2 (its CPU reference path) at our small SiMBA's width and depth, batch 2."""
    from transformers import Mamba2Config, Mamba2ForCausalLM

    from ssmusic.model import presets

    ours = presets.preset(preset)
    config = Mamba2Config(vocab_size=1024, hidden_size=ours.d_model, num_hidden_layers=ours.n_layers,
                          state_size=ours.d_state, head_dim=ours.headdim, expand=ours.expand, n_groups=1,
                          num_heads=ours.expand * ours.d_model // ours.headdim, chunk_size=ours.chunk_size)
    torch.manual_seed(0)
    model = Mamba2ForCausalLM(config).to(device).eval()
    inputs = {"input_ids": torch.zeros(2, 1, dtype=torch.long, device=device)}
    with transformers_mamba2_scan_in_pytorch() if device == "cpu" else contextlib.nullcontext():
        steps = _timed_generate(model, inputs, new_tokens)
    return {"ms_per_step_first_100": 1000 * statistics.median(steps[:100]),
            "ms_per_step_last_100": 1000 * statistics.median(steps[-100:]),
            "parameters": sum(p.numel() for p in model.parameters())}
