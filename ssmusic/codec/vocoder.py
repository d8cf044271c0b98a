"""A learned waveform decoder for the mel codec: log-mel frames -> audio, in the style of Vocos
(Siuzdak 2023): a ConvNeXt backbone at the frame rate and an inverse-STFT head that predicts each
frame's log-magnitude and phase, so no layer runs at the sample rate and decoding is a few matrix
products per frame plus one iSTFT (hop = the codec's hop, n_fft = 4 x hop).

Differences from Vocos, each chosen by measurement (docs/codec.md):
- limited look-ahead: every convolution sees `lookahead` future frames and kernel - 1 - lookahead
  past ones, so a stream waits for few frames of codes; the reach is bounded, so a window decoded
  with enough context equals a one-shot decode up to float rounding (ssmusic.codec.stream);
- phase in absolute time (`absolute_phase`): the head predicts each bin's phase relative to sample 0
  of the clip, not to its frame's start. A held tone then has a constant phase from frame to frame,
  which a convolution over constant input can produce; the frame-relative phase the iSTFT needs
  rotates by 2 pi k hop / n_fft per frame. This makes decoding depend on the absolute frame index
  (`first_frame`), as Griffin-Lim's initial phases do;
- a magnitude prior: the head adds a learned linear map of the input mel, initialised to spread
  each mel band's log energy over its FFT bins, so training starts from the mel's envelope.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ssmusic.config import from_dict
from ssmusic.errors import SsmusicError
from ssmusic.io.atomic import read_json, write_json_atomic
from ssmusic.io.tensors import check_shapes, load_tensors, save_tensors

WEIGHTS, CONFIG = "vocoder.safetensors", "vocoder.json"


@dataclass
class VocoderConfig:
    sample_rate: int = 22050
    hop: int = 512
    n_fft: int = 2048  # the iSTFT's; the input mel's own STFT is the codec's
    n_mels: int = 128
    dim: int = 256
    intermediate: int = 768
    layers: int = 8
    kernel: int = 7
    lookahead: int = 1  # future frames each convolution sees
    absolute_phase: bool = True
    input_mean: float = 0.0  # the training mels' statistics: the input is standardised with them
    input_std: float = 1.0
    max_log_magnitude: float = 9.0  # |X| <= e^9 ~ 8100: a loud full-scale tone is ~ n_fft / 4

    def __post_init__(self) -> None:
        if not 0 <= self.lookahead <= self.kernel - 1:
            raise SsmusicError(f"vocoder.json lookahead: expected 0..kernel - 1 = {self.kernel - 1}, "
                               f"got {self.lookahead}")
        if self.n_fft % self.hop:
            raise SsmusicError(f"vocoder.json n_fft: expected a multiple of hop {self.hop}, got {self.n_fft}")

    @property
    def context(self) -> tuple[int, int]:
        """(past, future) frames of input that reach a frame of the backbone's output."""
        convs = self.layers + 1
        return (self.kernel - 1 - self.lookahead) * convs, self.lookahead * convs

    @property
    def reach(self) -> tuple[int, int]:
        """(left, right) frames of input that reach the audio of a frame: the backbone's context
        widened by the iSTFT's overlap. The audio of frame t (samples [t hop, (t + 1) hop)) sums the
        windows of frames t - h + 1 .. t + h (h = n_fft / 2 hop, centred windows), so a window of codes
        with this much context on each side decodes its middle exactly as a one-shot decode does."""
        past, future = self.context
        half = self.n_fft // (2 * self.hop)
        return past + half - 1, future + half


class FrameConv(nn.Module):
    """Conv1d over frames [B, C, T] -> [B, C', T] with `lookahead` future frames and the rest past."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, lookahead: int, groups: int = 1) -> None:
        super().__init__()
        self.pad = (kernel - 1 - lookahead, lookahead)
        self.conv = nn.Conv1d(channels_in, channels_out, kernel, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP (GELU) -> layer scale, residual (ConvNeXt / Vocos)."""

    def __init__(self, dim: int, intermediate: int, kernel: int, lookahead: int, scale: float) -> None:
        super().__init__()
        self.depthwise = FrameConv(dim, dim, kernel, lookahead, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, intermediate)
        self.down = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, dim, T]
        h = self.norm(self.depthwise(x).transpose(1, 2))
        h = self.down(F.gelu(self.up(h))) * self.gamma
        return x + h.transpose(1, 2)


def band_spread(bank: torch.Tensor) -> torch.Tensor:
    """[n_bins, n_mels]: each FFT bin's log energy as the weighted mean of the mel bands covering it
    (bins no band covers take their nearest covered neighbour's weights)."""
    weights = bank.T.clone()  # [n_bins, n_mels]
    covered = weights.sum(1) > 0
    index = torch.arange(len(weights))
    nearest = torch.where(covered)[0]
    source = nearest[(index[:, None] - nearest[None]).abs().argmin(1)]
    weights = weights[source]
    return weights / weights.sum(1, keepdim=True)


class Vocoder(nn.Module):
    """log-mel frames [B, T, n_mels] (the codec's features) -> audio [B, T * hop]."""

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        from ssmusic.codec.mel import mel_filterbank

        c = self.config = config
        bins = c.n_fft // 2 + 1
        self.embed = FrameConv(c.n_mels, c.dim, c.kernel, c.lookahead)
        self.norm_in = nn.LayerNorm(c.dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(c.dim, c.intermediate, c.kernel, c.lookahead, 1 / c.layers)
                                    for _ in range(c.layers))
        self.norm_out = nn.LayerNorm(c.dim, eps=1e-6)
        self.head = nn.Linear(c.dim, 2 * bins)
        self.prior = nn.Linear(c.n_mels, bins)
        with torch.no_grad():
            # a mel band's value is ~ the mean |X| over its bins / the bin width in Hz (equal-area
            # filters), so log|X| ~ spread(log mel) + log(bin width)
            self.prior.weight.copy_(band_spread(mel_filterbank(c.sample_rate, c.n_fft, c.n_mels)))
            self.prior.bias.fill_(math.log(c.sample_rate / c.n_fft))
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)

    def spectrum(self, mel: torch.Tensor, first_frame: int = 0) -> torch.Tensor:
        """[B, T, n_mels] -> the complex STFT [B, n_fft // 2 + 1, T] the iSTFT turns into audio."""
        c = self.config
        x = self.embed(((mel - c.input_mean) / c.input_std).transpose(1, 2))
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.norm_out(x.transpose(1, 2)))  # [B, T, 2 bins]
        log_magnitude, phase = out.chunk(2, dim=-1)
        log_magnitude = (log_magnitude + self.prior(mel)).clamp(max=c.max_log_magnitude)
        if c.absolute_phase:
            phase = phase + frame_rotation(out.shape[1], first_frame, c.n_fft, c.hop, out.device)
        return torch.polar(log_magnitude.exp(), phase).transpose(1, 2)

    def forward(self, mel: torch.Tensor, first_frame: int = 0) -> torch.Tensor:
        c = self.config
        spec = self.spectrum(mel, first_frame)
        return torch.istft(spec, c.n_fft, c.hop, window=self.window, center=True, length=mel.shape[1] * c.hop)

    def save(self, directory: str | Path, dtype: torch.dtype = torch.float16) -> None:
        """Weights as safetensors in `dtype` (decoding always computes in float32) + vocoder.json."""
        directory = Path(directory)
        save_tensors({k: v.to(dtype) for k, v in self.state_dict().items()}, directory / WEIGHTS)
        write_json_atomic(directory / CONFIG, asdict(self.config))

    @classmethod
    def load(cls, directory: str | Path) -> "Vocoder":
        directory = Path(directory)
        if not (directory / CONFIG).is_file():
            raise SsmusicError(f"{directory / CONFIG}: the learned decoder is missing (decoder='griffin-lim' "
                               "decodes without it)")
        model = cls(from_dict(VocoderConfig, read_json(directory / CONFIG), str(directory / CONFIG)))
        weights = load_tensors(directory / WEIGHTS)
        expected = model.state_dict()
        check_shapes(expected, weights, str(directory / WEIGHTS), str(directory / CONFIG))
        missing = sorted(set(expected) - set(weights))
        if missing:
            raise SsmusicError(f"{directory / WEIGHTS}: missing tensors {missing[:3]}")
        model.load_state_dict({k: v.float() for k, v in weights.items()})
        return model.eval()


def frame_rotation(frames: int, first_frame: int, n_fft: int, hop: int, device: torch.device) -> torch.Tensor:
    """[frames, bins]: the phase by which bin k of frame t (absolute index first_frame + t) leads in
    its frame's own time origin over the clip's, 2 pi k hop t / n_fft, reduced modulo 2 pi in
    integers (exact for any t)."""
    t = torch.arange(first_frame, first_frame + frames, device=device)[:, None]
    k = torch.arange(n_fft // 2 + 1, device=device)[None]
    return (k * hop * t % n_fft).float() * (2 * math.pi / n_fft)
