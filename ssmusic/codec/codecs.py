"""Audio codecs behind one small protocol:

    codec.encode(wav [B,C,N] or [B,N], sample_rate) -> codes [B, K, T]   (resampled, downmixed)
    codec.decode(codes [B, k, T]) -> wav [B, 1, N]                       (first k <= K codebooks)
    codec.sample_rate, codec.frame_rate, codec.card, codec.n_codebooks, codec.name

Backends: the offline default (a transform + k-means RVQ codec shipped in the package), DAC and
EnCodec through transformers (hub id or local directory). `load_codec()` picks by name.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ssmusic.errors import SsmusicError
from ssmusic.io.hub import load_pretrained

DEFAULT_CODEC = "ssmusic-mel-22k"
DEFAULT_CODEC_DIR = Path(__file__).parents[1] / "assets" / "codec"


class Codec:
    """Wraps a backend with `encode_mono([B, N]) -> [B, K, T]` and `decode(codes) -> [B, 1, N]`."""

    def __init__(self, backend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.sample_rate = int(backend.sample_rate)
        self.frame_rate = float(backend.frame_rate)
        self.card = int(backend.card)
        self.n_codebooks = int(backend.n_codebooks)

    @property
    def device(self) -> torch.device:
        return self.backend.device

    def to(self, device: str | torch.device) -> "Codec":
        """Run encoding and decoding on `device`; codes and audio come back on the CPU."""
        self.backend.to(device)
        return self

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        from ssmusic.io.audio import resample

        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() == 3:
            wav = wav.float().mean(dim=1)  # downmix [B, C, N] -> [B, N]
        if wav.dim() != 2:
            raise SsmusicError(f"codec {self.name}: expected audio [B, C, N] or [B, N], got {tuple(wav.shape)}")
        wav = resample(wav.float(), int(sample_rate), self.sample_rate)
        return self.backend.encode_mono(wav).long()

    @property
    def samples_per_frame(self) -> int:
        return round(self.sample_rate / self.frame_rate)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, first_frame: int = 0, batch_size: int = 16) -> torch.Tensor:
        """Codes [B, k, T] -> audio [B, 1, N] on the CPU, decoded `batch_size` rows at a time on the
        codec's device: one call per batch keeps a GPU busy, the cap bounds its memory (DAC's
        activations for one 30 s row are ~1 GB). `first_frame`: where `codes` start in a longer
        clip (streaming decodes windows); only a position-dependent decoder (Griffin-Lim's initial
        phases) uses it."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.n_codebooks:
            raise SsmusicError(f"codec {self.name}: expected codes [B, k <= {self.n_codebooks}, T], "
                               f"got {tuple(codes.shape)}")
        positioned = bool(first_frame) and getattr(self.backend, "position_dependent", False)
        return torch.cat([(self.backend.decode(part, first_frame=first_frame) if positioned
                           else self.backend.decode(part)).float().cpu() for part in codes.split(batch_size)])

    def __repr__(self) -> str:
        return (f"Codec({self.name!r}, {self.sample_rate} Hz, {self.frame_rate:.2f} frames/s, "
                f"{self.n_codebooks} x {self.card})")


class HFCodec:
    """DAC (DacModel) or EnCodec (EncodecModel) from transformers."""

    def __init__(self, model) -> None:
        self.model = model.eval()
        config = model.config
        self.kind = config.model_type
        self.sample_rate = config.sampling_rate
        if self.kind == "dac":
            self.card, self.n_codebooks = config.codebook_size, config.n_codebooks
            self.frame_rate = config.sampling_rate / config.hop_length
        else:
            # codebooks used at the highest bandwidth (facebook/encodec_32khz: 4 x 2048, 50 Hz)
            self.card, self.n_codebooks = config.codebook_size, config.num_quantizers
            self.frame_rate = config.frame_rate

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> "HFCodec":
        self.model.to(device)
        return self

    def encode_mono(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav[:, None].to(self.device)
        if self.kind == "dac":
            return self.model.encode(x).audio_codes.cpu()
        if self.model.config.audio_channels != 1:
            x = x.expand(-1, self.model.config.audio_channels, -1)
        out = self.model.encode(x, bandwidth=max(self.model.config.target_bandwidths))
        return out.audio_codes[0].cpu()  # [chunks=1, B, K, T] -> [B, K, T]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        codes = codes.to(self.device)
        if self.kind == "dac":
            audio = self.model.decode(audio_codes=codes).audio_values  # [B, N]
            return audio[:, None].cpu()
        audio = self.model.decode(codes[None], [None]).audio_values  # [B, C, N]
        return audio.mean(dim=1, keepdim=True).cpu()


def _load_hf(name: str):
    from transformers import AutoConfig, DacModel, EncodecModel

    def load(local: bool):
        config = AutoConfig.from_pretrained(name, local_files_only=local)
        if config.model_type == "dac":
            return DacModel.from_pretrained(name, local_files_only=local)
        if config.model_type == "encodec":
            return EncodecModel.from_pretrained(name, local_files_only=local)
        raise SsmusicError(f"codec {name!r}: model type {config.model_type!r} is not a supported codec "
                           "(dac, encodec, or an ssmusic transform codec directory)")

    return load_pretrained("codec", name, load, "pass --codec DIR", files="config.json + model.safetensors")


def load_codec(name_or_path: str | None = None, device: str | torch.device = "cpu",
               decoder: str | None = None) -> Codec:
    """None or 'ssmusic-mel-22k' -> the shipped offline codec; a directory with codec.json -> a
    transform codec; 'descript/dac_44khz', 'facebook/encodec_32khz' or a local HF directory -> DAC /
    EnCodec via transformers. `decoder` ("vocoder" or "griffin-lim"; mel codecs only): how a mel
    codec turns codes into audio; None = the codec's own default (the shipped codec: vocoder)."""
    from ssmusic.codec.transform import TransformCodec

    name = name_or_path or DEFAULT_CODEC
    if name == DEFAULT_CODEC:
        if not (DEFAULT_CODEC_DIR / "codec.json").is_file():
            raise SsmusicError(f"{DEFAULT_CODEC_DIR}: the offline codec is missing from this installation; "
                               "reinstall ssmusic from a full clone")
        return Codec(TransformCodec.load(DEFAULT_CODEC_DIR, decoder), DEFAULT_CODEC).to(device)
    path = Path(name)
    if (path / "codec.json").is_file():
        return Codec(TransformCodec.load(path, decoder), str(path)).to(device)
    if path.exists() and not (path / "config.json").is_file():
        raise SsmusicError(f"{path}: not a codec directory (expected codec.json, or a transformers "
                           "DAC/EnCodec config.json + weights)")
    if decoder is not None:
        raise SsmusicError(f"codec {name}: --decoder {decoder} applies to the mel codec only; "
                           "DAC and EnCodec have their own decoders")
    return Codec(HFCodec(_load_hf(name)), name).to(device)
