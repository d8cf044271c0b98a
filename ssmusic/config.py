"""Configuration dataclasses, saved as JSON beside every checkpoint.

A config is the only thing needed (with the weights) to rebuild a model, so it is plain data:
no callables, no paths to code. Unknown keys and invalid values are refused with a one-line
error naming the field, so a typo in a JSON file never silently falls back to a default.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from ssmusic.io.atomic import read_json, write_json_atomic
from ssmusic.errors import ConfigError

BACKBONES = ("simba", "mamba", "transformer")
CONDITIONINGS = ("prefix", "cross", "pooled")
CHANNEL_MIXERS = ("mlp", "einfft")
POSITIONS = ("none", "sinusoidal")
NULL_CONDITIONS = ("learned", "empty_text")


@dataclass
class LMConfig:
    """Everything that defines a MusicLM's architecture."""

    backbone: str = "simba"  # simba | mamba | transformer
    conditioning: str = "prefix"  # prefix | cross | pooled (only the pooled caption vector below)
    channel_mixer: str = "mlp"  # mlp | einfft (the SiMBA channel-mixing half)
    d_model: int = 256
    n_layers: int = 4
    # Mamba2 mixer
    d_state: int = 64
    expand: int = 2
    headdim: int = 64
    d_conv: int = 4
    ngroups: int = 1
    chunk_size: int = 64
    # attention (transformer backbone and cross-attention sub-layers)
    n_heads: int = 4
    # channel mixer hidden width = ff_mult * d_model (paper: 1024 -> 2048)
    ff_mult: int = 2
    einfft_blocks: int = 4
    dropout: float = 0.1
    # tokens
    n_codebooks: int = 1
    card: int = 1024
    # conditioning
    text_dim: int = 384
    # position encoding added to the whole (prefix + audio) sequence; the released SSM-TTM
    # model uses sinusoidal positions, recurrent backbones do not need them.
    positions: str = "sinusoidal"
    # The released SSM-TTM model ignores the text mask (padding embeddings are part of the
    # prefix). False reproduces that; True (ours) makes padded positions exact no-ops.
    use_text_mask: bool = True
    # Options that reproduce SSM-TTM's released model (`ssmusic import-ssmttm` sets them):
    # an RMSNorm before the output heads (theirs has none);
    final_norm: bool = True
    # a start frame of the special id between the condition and the first codes (theirs: the last
    # text position predicts that frame, the start frame's position predicts the first codes);
    start_token: bool = False
    # the unconditional branch of CFG: our learned vector, or the encoded empty caption (theirs).
    null_condition: str = "learned"  # learned | empty_text
    # Add the caption's pooled sentence vector (masked mean of the text encoder's token embeddings,
    # MiniLM's own sentence pooling; Linear + LayerNorm) to the input at every position, beside the
    # prefix or cross-attention. A prefix reaches later frames only through the recurrent state,
    # and once a few frames are heard the audio predicts itself; measured on the demo data, the
    # prefix-only model ignored its caption (see docs/model.md, "Conditioning: following the prompt").
    pooled_text: bool = False
    # The beat clock (ssmusic/model/controls.py): the codec's frame rate, so the prompt's BPM becomes a
    # beat phase at every frame, added to the input; 0 = no clock (models trained before it).
    tempo_clock_fps: float = 0.0
    # The key the prompt names (tonic and mode, ssmusic/model/controls.py) as a learned vector added
    # at every position.
    key_embedding: bool = False

    @property
    def uses_pooled_text(self) -> bool:
        return self.pooled_text or self.conditioning == "pooled"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def choice(name: str, options: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in options:
                raise ConfigError(f"LMConfig.{name}: expected one of {list(options)}, got {value!r}")

        choice("backbone", BACKBONES)
        choice("conditioning", CONDITIONINGS)
        choice("channel_mixer", CHANNEL_MIXERS)
        choice("positions", POSITIONS)
        choice("null_condition", NULL_CONDITIONS)
        for name in ("use_text_mask", "final_norm", "start_token", "pooled_text", "key_embedding"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"LMConfig.{name}: expected true or false, got {getattr(self, name)!r}")
        for name in ("d_model", "n_layers", "d_state", "expand", "headdim", "d_conv", "ngroups",
                     "chunk_size", "n_heads", "ff_mult", "einfft_blocks", "n_codebooks", "card",
                     "text_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"LMConfig.{name}: expected a positive integer, got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LMConfig.dropout: expected a number in [0, 1), got {self.dropout!r}")
        if self.backbone != "transformer":
            if (self.expand * self.d_model) % self.headdim:
                raise ConfigError(
                    f"LMConfig.headdim: expand*d_model={self.expand * self.d_model} must be divisible "
                    f"by headdim={self.headdim}")
        if self.backbone == "transformer" or self.conditioning == "cross":
            if self.d_model % self.n_heads:
                raise ConfigError(
                    f"LMConfig.n_heads: d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not isinstance(self.tempo_clock_fps, (int, float)) or isinstance(self.tempo_clock_fps, bool) \
                or self.tempo_clock_fps < 0:
            raise ConfigError(f"LMConfig.tempo_clock_fps: expected a frame rate >= 0 (0: no clock), "
                              f"got {self.tempo_clock_fps!r}")
        for name in ("tempo_clock_fps", "key_embedding"):
            if getattr(self, name) and (self.conditioning == "prefix" or self.start_token):
                raise ConfigError(f"LMConfig.{name}: the prompt's controls need cross or pooled conditioning without "
                                  "a start token (the position a frame is predicted at is then its index)")
        if self.channel_mixer == "einfft" and self.d_model % self.einfft_blocks:
            raise ConfigError(
                f"LMConfig.einfft_blocks: d_model={self.d_model} must be divisible by "
                f"einfft_blocks={self.einfft_blocks}")


T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build dataclass `cls` from `data`, refusing unknown keys with a message naming `source`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**data)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    except TypeError as err:
        raise ConfigError(f"{source}: {err}") from None


def to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)


def save_config(config: Any, path: str | os.PathLike) -> None:
    write_json_atomic(path, to_dict(config))


def load_config(cls: type[T], path: str | os.PathLike) -> T:
    return from_dict(cls, read_json(path), source=str(path))


@dataclass
class PipelineConfig:
    """What a model directory needs besides the LM: how text and audio become tokens.

    Written as `pipeline.json` beside `lm_config.json` + `model.safetensors` by training (copied
    from the dataset manifest) and by importers; read by generation.
    """

    codec: str  # a name or path that ssmusic.load_codec accepts
    text_encoder: str  # a name or path that ssmusic.load_text_encoder accepts
    sample_rate: int
    frame_rate: float
    card: int
    n_codebooks: int  # codebooks the LM models (the first n of the codec's)
    text_dim: int
    clip_seconds: float  # training clip length: the Transformer's context limit at generation
    min_text_tokens: int = 0  # pad captions to at least this many tokens (SSM-TTM uses 60)
    # token id for that padding; None: the tokenizer's pad (SSM-TTM pads with 1, T5's </s>)
    min_text_pad_id: int | None = None
    # sampling defaults the model was released with; the CLI/API arguments override them
    temperature: float = 1.0
    top_k: int = 250
    cfg_scale: float = 3.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "card", "n_codebooks", "text_dim", "top_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"PipelineConfig.{name}: expected a positive integer, got {value!r}")
        for name in ("frame_rate", "clip_seconds", "temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"PipelineConfig.{name}: expected a positive number, got {value!r}")
        if not isinstance(self.min_text_tokens, int) or self.min_text_tokens < 0:
            raise ConfigError(
                f"PipelineConfig.min_text_tokens: expected an integer >= 0, got {self.min_text_tokens!r}")
        if self.min_text_pad_id is not None and (not isinstance(self.min_text_pad_id, int)
                                                 or isinstance(self.min_text_pad_id, bool) or self.min_text_pad_id < 0):
            raise ConfigError(
                f"PipelineConfig.min_text_pad_id: expected null or an integer >= 0, got {self.min_text_pad_id!r}")
        if not isinstance(self.cfg_scale, (int, float)) or self.cfg_scale < 0:
            raise ConfigError(f"PipelineConfig.cfg_scale: expected a number >= 0, got {self.cfg_scale!r}")
