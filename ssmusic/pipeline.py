"""TextToMusic: captions in, waveforms out.

    caption -> text encoder -> MusicLM.generate (recurrent state, CFG in one batch) -> codes
            -> codec.decode -> audio [B, 1, N]

A model directory holds `lm_config.json` + `model.safetensors` (the LM) and `pipeline.json`
(which codec and text encoder it was trained with). `from_pretrained()` with no argument loads the
small default model that ships inside the package, so generation works offline on a fresh machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import torch

from ssmusic.checks import MAX_SECONDS, check_device, check_prompt, check_prompts, check_seconds
from ssmusic.config import PipelineConfig, load_config
from ssmusic.errors import SsmusicError
from ssmusic.model.controls import control_rows
from ssmusic.model.sampling import SamplingParams

if TYPE_CHECKING:
    from ssmusic.codec.stream import StreamChunk

DEFAULT_MODEL_DIR = Path(__file__).parent / "assets" / "default_model"
# the checks live in ssmusic.checks; named here too, where front ends have imported them from
__all__ = ["DEFAULT_MODEL_DIR", "MAX_SECONDS", "TextToMusic", "check_prompt", "check_seconds", "model_sampling",
           "resolve_model_dir"]


def resolve_model_dir(path: str | Path | None) -> Path:
    """Accept a model dir, a training run dir (its newest checkpoint) or a model.safetensors file."""
    if path is None:
        path = DEFAULT_MODEL_DIR
        if not (path / "model.safetensors").is_file():
            raise SsmusicError(
                f"{path}: the default model is missing from this installation; pass --checkpoint "
                "RUN_DIR or reinstall ssmusic from a full clone")
    path = Path(path)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise SsmusicError(f"{path}: expected a model directory or a .safetensors file")
        path = path.parent
    if not path.exists():
        raise SsmusicError(f"{path}: no such checkpoint file or directory")
    if (path / "lm_config.json").is_file():
        return path
    candidates = [path / "final"] + sorted((path / "checkpoints").glob("step_*"), reverse=True)
    for candidate in candidates:
        if (candidate / "lm_config.json").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    raise SsmusicError(
        f"{path}: not a model directory (expected lm_config.json + model.safetensors + pipeline.json, "
        "or a training run with final/ or checkpoints/step_*/)")


def model_sampling(config: PipelineConfig, **overrides: float | int | None) -> SamplingParams:
    """A model's sampling defaults (its pipeline.json) with `overrides` (SamplingParams fields; None
    keeps the default) applied: validated on construction, so a CLI can check them before loading."""
    defaults = SamplingParams(cfg_scale=config.cfg_scale, top_k=config.top_k, temperature=config.temperature)
    return replace(defaults, **{k: v for k, v in overrides.items() if v is not None})


class TextToMusic:
    """The product in one object: `TextToMusic.from_pretrained().generate(["a calm piano piece"])`."""

    # a model with controls (ssmusic.model.controls) hears the BPM and key each prompt names; False
    # generates from the words alone (`generate --no-controls`: what the controls are worth)
    hear_controls = True

    def __init__(self, lm: torch.nn.Module, codec, text_encoder, config: PipelineConfig,
                 model_dir: Path | None = None) -> None:
        self.lm = lm.eval()
        self.codec = codec
        self.text_encoder = text_encoder
        self.config = config
        self.model_dir = model_dir

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | torch.device = "cpu",
                        codec: str | None = None, text_encoder: str | None = None,
                        decoder: str | None = None) -> "TextToMusic":
        """Load a model dir (None = the shipped default). `codec`/`text_encoder` override where
        the pipeline.json names them (e.g. a local copy of weights named by hub id); `decoder`
        picks the mel codec's decoder ("vocoder" or "griffin-lim"; None = the codec's default)."""
        from ssmusic.codec.codecs import load_codec
        from ssmusic.model.lm import MusicLM
        from ssmusic.text import load_text_encoder

        device = check_device(device)  # before anything loads
        model_dir = resolve_model_dir(path)
        if not (model_dir / "pipeline.json").is_file():
            raise SsmusicError(f"{model_dir}: pipeline.json is missing (which codec and text encoder "
                               "the model was trained with)")
        config = load_config(PipelineConfig, model_dir / "pipeline.json")
        lm = MusicLM.from_pretrained(model_dir)
        lm_config = lm.config
        if lm_config.card != config.card or lm_config.n_codebooks != config.n_codebooks:
            raise SsmusicError(
                f"{model_dir}: lm_config.json (card {lm_config.card}, {lm_config.n_codebooks} "
                f"codebooks) disagrees with pipeline.json (card {config.card}, "
                f"{config.n_codebooks} codebooks)")
        def inside(name: str) -> str:  # pipeline.json may name a directory inside the model directory
            return str(model_dir / name) if not Path(name).is_absolute() and (model_dir / name).is_dir() else name

        audio_codec = load_codec(codec or inside(config.codec), device=device, decoder=decoder)
        text = load_text_encoder(text_encoder or inside(config.text_encoder), device=device)
        if text.dim != lm_config.text_dim:
            raise SsmusicError(
                f"{model_dir}: text encoder {text.name!r} gives {text.dim}-d embeddings, the model "
                f"expects text_dim={lm_config.text_dim}")
        if audio_codec.card != config.card or audio_codec.n_codebooks < config.n_codebooks:
            raise SsmusicError(
                f"{model_dir}: codec {audio_codec.name!r} (card {audio_codec.card}, "
                f"{audio_codec.n_codebooks} codebooks) does not match the model (card {config.card}, "
                f"{config.n_codebooks} codebooks)")
        return cls(lm.to(device), audio_codec, text, config, model_dir)

    def to(self, device: str | torch.device) -> "TextToMusic":
        """Move every component: the LM, the codec and the text encoder."""
        self.lm.to(device)
        self.codec.to(device)
        self.text_encoder.to(device)
        return self

    def devices(self) -> dict[str, torch.device]:
        """Where each component runs (what `--device` decided)."""
        return {"lm": next(self.lm.parameters()).device, "codec": self.codec.device,
                "text_encoder": self.text_encoder.device}

    def compile_decode(self) -> "TextToMusic":
        """Decode with a torch.compile'd step (ssmusic.model.compiled: recurrent backbones; compiled at the
        first step, then loaded from ~/.cache/ssmusic/compile by later processes)."""
        from ssmusic.model.compiled import compile_decode

        compile_decode(self.lm)
        return self

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def max_frames(self) -> int | None:
        """Transformers get a context limit (their training length); SSM state never grows."""
        if self.lm.config.backbone != "transformer":
            return None
        return round(self.config.clip_seconds * self.config.frame_rate)

    def check_context(self, steps: int, prompt_frames: int) -> None:
        limit = self.max_frames
        if limit is not None and steps + prompt_frames > limit:
            raise SsmusicError(
                f"--seconds: {steps + prompt_frames} frames (prompt included) exceed this Transformer model's "
                f"context of {limit} frames ({limit / self.config.frame_rate:.1f} s, its training length); "
                "SSM backbones (simba, mamba) generate any length with constant memory")

    def encode_text(self, descriptions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        # Released SSM-TTM prompts are padded to >= 60 tokens: the padded states are part of the
        # prefix its model was trained on, so reproduce them rather than a shorter prefix.
        emb, mask = self.text_encoder.encode(list(descriptions), min_tokens=self.config.min_text_tokens,
                                             min_pad_id=self.config.min_text_pad_id)
        device = next(self.lm.parameters()).device
        return emb.to(device), mask.to(device)

    def sampling(self, **overrides: float | int | None) -> SamplingParams:
        """The model's released sampling defaults (pipeline.json), with `overrides` (SamplingParams
        fields; None keeps the default) applied."""
        return model_sampling(self.config, **overrides)

    def _lm_arguments(self, descriptions: str | Sequence[str], seconds: float, sampling: SamplingParams | None,
                      prompt_codes: torch.Tensor | None) -> dict:
        """Validated keyword arguments for MusicLM.generate / generate_frames (`sampling`: the
        model's defaults when None)."""
        descriptions, seconds = check_prompts(descriptions), check_seconds(seconds)
        sampling = sampling or self.sampling()
        steps = max(1, round(float(seconds) * self.config.frame_rate))
        self.check_context(steps, 0 if prompt_codes is None else prompt_codes.shape[-1])
        null_text = null_mask = None
        if self.lm.config.null_condition == "empty_text" and sampling.guided:
            # the null branch is the empty caption, encoded in the same batch (same padding)
            text, mask = self.encode_text(descriptions + [""] * len(descriptions))
            text, null_text = text.chunk(2)
            mask, null_mask = mask.chunk(2)
        else:
            text, mask = self.encode_text(descriptions)
        arguments = dict(text=text, text_mask=mask, steps=steps, sampling=sampling, prompt_codes=prompt_codes,
                         null_text=null_text, null_text_mask=null_mask)
        if self.hear_controls and getattr(self.lm, "uses_controls", False):  # the BPM and key each prompt names
            arguments["controls"] = control_rows(descriptions)
        return arguments

    @torch.inference_mode()
    def generate_codes(self, descriptions: str | Sequence[str], seconds: float = 10.0,
                       sampling: SamplingParams | None = None, prompt_codes: torch.Tensor | None = None,
                       callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Captions (a list, or one string) -> codes [B, K, T] for `seconds` of new audio (`sampling`: the
        model's defaults)."""
        return self.lm.generate(callback=callback, **self._lm_arguments(descriptions, seconds, sampling, prompt_codes))

    def stream(self, descriptions: str | Sequence[str], seconds: float = 10.0, chunk_seconds: float = 1.0,
               sampling: SamplingParams | None = None, audio_prompt: tuple[torch.Tensor, int] | None = None,
               **overrides: float | int | None) -> Iterator["StreamChunk"]:
        """Like generate(), yielding audio as it is decoded: `StreamChunk`s with `.audio` [B, 1, n]
        (about `chunk_seconds` each; concatenated they equal generate()'s audio for the same seed
        within ssmusic.codec.stream's stated tolerance) and `.codes` [B, K, T] (every new frame so far)."""
        from ssmusic.codec.stream import StreamDecoder, ceil_frames, stream_context, stream_frames

        descriptions, seconds = check_prompts(descriptions), check_seconds(seconds)
        if not math.isfinite(chunk_seconds) or chunk_seconds <= 0:
            raise SsmusicError(f"chunk_seconds: expected a positive duration, got {chunk_seconds}")
        sampling = replace(sampling, **{k: v for k, v in overrides.items() if v is not None}) if sampling \
            else self.sampling(**overrides)
        prompt_codes = None
        if audio_prompt is not None:
            prompt_codes = self.encode_audio_prompt(*audio_prompt).expand(len(descriptions), -1, -1)
        with torch.no_grad():
            arguments = self._lm_arguments(descriptions, seconds, sampling, prompt_codes)
        decoder = StreamDecoder(self.codec, stream_context(self.codec))
        frames = self.lm.generate_frames(**arguments)
        chunk_frames = ceil_frames(chunk_seconds, self.config.frame_rate)
        # generate_frames and the codec run without autograd themselves (no grad mode is held
        # across a yield, which would leak into the caller's code)
        yield from stream_frames(frames, decoder, arguments["steps"], chunk_frames, self.sample_rate, prompt_codes)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, T] -> audio [B, 1, N] in [-1, 1]."""
        audio = self.codec.decode(codes)  # on the codec's device, in batches; audio returns on the CPU
        return audio.float().clamp(-1.0, 1.0)

    def encode_audio_prompt(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Audio [C, N] or [1, C, N] -> the model's codebooks [1, K, T] to continue from."""
        if wav.dim() == 2:
            wav = wav.unsqueeze(0)
        codes = self.codec.encode(wav, sample_rate)[:, : self.config.n_codebooks]
        if codes.shape[-1] == 0:
            raise SsmusicError("audio prompt is shorter than one codec frame")
        return codes.to(next(self.lm.parameters()).device)

    def generate(self, descriptions: str | Sequence[str], seconds: float = 10.0, sampling: SamplingParams | None = None,
                 audio_prompt: tuple[torch.Tensor, int] | None = None, progress: bool = False,
                 **overrides: float | int | None) -> tuple[torch.Tensor, int]:
        """Captions -> (audio [B, 1, N], sample_rate). `sampling` defaults to the model's own;
        `overrides` (cfg_scale=, top_k=, top_p=, temperature=, seed=) change single fields of it.
        With `audio_prompt=(wav, sr)` every caption continues that audio; the returned audio is the
        prompt followed by `seconds` of new music. `descriptions`: a list of captions, or one string
        (one caption, one clip)."""
        descriptions, seconds = check_prompts(descriptions), check_seconds(seconds)
        sampling = replace(sampling, **{k: v for k, v in overrides.items() if v is not None}) if sampling \
            else self.sampling(**overrides)
        prompt_codes = None
        if audio_prompt is not None:
            prompt_codes = self.encode_audio_prompt(*audio_prompt).expand(len(descriptions), -1, -1)
        callback = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=max(1, round(seconds * self.config.frame_rate)), unit="frame",
                       desc="generating", leave=False)

            def callback(step: int, total: int) -> None:
                bar.update(step + 1 - bar.n)
        try:
            codes = self.generate_codes(descriptions, seconds=seconds, sampling=sampling,
                                        prompt_codes=prompt_codes, callback=callback)
        finally:
            if bar is not None:
                bar.close()
        if prompt_codes is not None:
            codes = torch.cat([prompt_codes.to(codes.device), codes], dim=-1)
        return self.decode(codes), self.sample_rate

    def describe(self) -> dict:
        """Provenance for sidecar files."""
        codec_config = getattr(self.codec.backend, "config", None)
        return {
            "model_dir": str(self.model_dir) if self.model_dir else None,
            "backbone": self.lm.config.backbone,
            "conditioning": self.lm.config.conditioning,
            # controls the model hears from the prompt (ssmusic/model/controls.py): the BPM, the key
            "tempo_clock": bool(getattr(self.lm.config, "tempo_clock_fps", 0)),
            "key_embedding": bool(getattr(self.lm.config, "key_embedding", False)),
            "hears_controls": self.hear_controls and bool(getattr(self.lm, "uses_controls", False)),
            "pipeline": asdict(self.config),
            # how the codes became audio: the mel codec's "vocoder" or "griffin-lim"; None for codecs
            # with one decoder (MDCT, DAC, EnCodec)
            "decoder": codec_config.decoder if getattr(codec_config, "transform", None) == "mel" else None,
        }
