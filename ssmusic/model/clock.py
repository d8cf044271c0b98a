"""The beat clock: the prompt's tempo as a metronome the decoder hears at every frame.

Measured on the first demo-v2 default model (docs/training.md, "The beat clock"): the tempo it
played had no correlation with the BPM in its caption (r = -0.04 over 74 test clips), though every
training caption names one. A number read once through the text encoder is a weak signal for a
periodic pattern hundreds of frames long. The clock gives it directly: for the frame a position
predicts, the phase within the beat (and its halves, doublings and the bar) as sines and cosines,
plus log-tempo, projected to the model width and added to the input, like the sinusoidal positions.

A row's tempo is [bpm, beats per bar, first frame]: the first frame is where a training crop starts
in its clip (0 when generating). bpm 0 means no clock: the row's features are all zero and the
projection has no bias, so such a row is computed exactly as by a model without a clock. The
projection starts at zero, so a trained model fine-tuned with a clock starts from what it was.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn as nn

# multiples of the beat whose phase is given: half-time, the beat, eighths, sixteenths
BEAT_HARMONICS = (0.5, 1.0, 2.0, 4.0)
CLOCK_FEATURES = 2 + 2 * len(BEAT_HARMONICS) + 2  # flag, log-tempo, beat phases, bar phase
TEMPO_RANGE = (30.0, 300.0)  # BPM read from a prompt outside it are not taken as a tempo
CLOCK_DROPOUT = 0.2  # training rows given no clock, so prompts without a tempo still generate

_BPM = re.compile(r"(\d{2,3}(?:\.\d+)?)\s*(?:-\s*\d{2,3}\s*)?(?:bpm\b|beats per minute)", re.IGNORECASE)
_METER = re.compile(r"\b([2-7])/(4|8)\b")


def caption_tempo(caption: str) -> tuple[float, float] | None:
    """(bpm, beats per bar) named in a caption, e.g. "a waltz at 90 BPM in 3/4" -> (90.0, 3.0); the
    first BPM figure counts ("120-130 BPM" -> 120); 4 beats a bar unless a meter is written; None
    when no tempo in TEMPO_RANGE is written as a number of BPM."""
    match = _BPM.search(caption)
    if match is None:
        return None
    bpm = float(match.group(1))
    if not TEMPO_RANGE[0] <= bpm <= TEMPO_RANGE[1]:
        return None
    meter = _METER.search(caption)
    return bpm, float(meter.group(1)) if meter else 4.0


def tempo_rows(captions: list[str], starts: torch.Tensor | None = None) -> torch.Tensor:
    """[B, 3] float (bpm, beats per bar, first frame) for captions; bpm 0 where none is named."""
    rows = torch.zeros(len(captions), 3)
    for i, caption in enumerate(captions):
        tempo = caption_tempo(caption)
        if tempo is not None:
            rows[i, :2] = torch.tensor(tempo)
    if starts is not None:
        rows[:, 2] = starts.to(rows.dtype)
    return rows


def clock_features(positions: torch.Tensor, tempo: torch.Tensor, frame_rate: float) -> torch.Tensor:
    """positions [B, T] (the frame each input predicts, counted in the window) and tempo [B, 3] ->
    [B, T, CLOCK_FEATURES] float32; rows whose bpm is 0 are all zero."""
    tempo = tempo.float()
    bpm, bar, first = tempo[:, 0:1], tempo[:, 1:2].clamp(min=1.0), tempo[:, 2:3]
    on = (bpm > 0).float()
    # float64 for the beat count: thousands of frames into a clip, float32 phases drift
    beats = (positions.double() + first.double()) / frame_rate * bpm.double() / 60.0
    parts = [on.expand_as(beats).float(), (torch.log2(bpm.clamp(min=1.0) / 120.0) * on).expand_as(beats).float()]
    for multiple in (*BEAT_HARMONICS, None):
        cycles = beats / bar.double() if multiple is None else beats * multiple
        angle = 2 * math.pi * torch.frac(cycles)
        parts += [(torch.sin(angle).float() * on), (torch.cos(angle).float() * on)]
    return torch.stack(parts, dim=-1)


class BeatClock(nn.Module):
    """clock_features -> [B, T, d] by a bias-free projection that starts at zero."""

    def __init__(self, d_model: int, frame_rate: float) -> None:
        super().__init__()
        self.frame_rate = frame_rate
        self.proj = nn.Linear(CLOCK_FEATURES, d_model, bias=False)
        nn.init.zeros_(self.proj.weight)

    def forward(self, positions: torch.Tensor, tempo: torch.Tensor) -> torch.Tensor:
        features = clock_features(positions, tempo, self.frame_rate)
        return self.proj(features.to(self.proj.weight.dtype))


def drop_clock(tempo: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training: each row's clock switched off (bpm 0) with probability p."""
    if p <= 0:
        return tempo
    keep = torch.rand(tempo.shape[0], generator=generator) >= p
    return torch.where(keep[:, None].to(tempo.device), tempo, torch.zeros_like(tempo))
