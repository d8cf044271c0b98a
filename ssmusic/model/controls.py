"""Musical controls read from the prompt that the decoder hears directly: a beat clock and the key.

Measured on the first demo-v2 default model (docs/model.md, "Controls: tempo and key"): the tempo it
played followed the BPM in its caption no better than chance (19% within 8% of the asked BPM against
16% for the same clips judged against shuffled prompts; real clips 73%), though every training
caption names one; the mode given the tonic was 67% against 99% for real clips. A number or a key
name read once through the text encoder is a weak signal for a periodic pattern hundreds of frames
long, or for the pitch set of every frame. So the prompt's BPM and key are parsed (caption_tempo,
caption_key) and given to the decoder at every position:

- the beat clock: for the frame a position predicts, the phase within the beat (and its halves,
  doublings and the bar) as sines and cosines, plus log-tempo, projected to the model width;
- the key: a learned vector per tonic plus one per mode.

Both are added to the input, like the sinusoidal positions. A row's controls are [bpm, beats per bar,
first frame, tonic, mode] (CONTROL_COLUMNS): the first frame is where a training crop starts in its
clip (0 when generating); bpm 0 means no clock, tonic or mode -1 no key. A row without them is
computed exactly as by a model without them (zero features, bias-free projections), and both start
at zero, so a trained model fine-tuned with them starts from what it was.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn as nn

CONTROL_COLUMNS = ("bpm", "beats_per_bar", "first_frame", "tonic", "mode")
MODES = ("major", "minor")
# multiples of the beat whose phase is given: half-time, the beat, eighths, sixteenths
BEAT_HARMONICS = (0.5, 1.0, 2.0, 4.0)
CLOCK_FEATURES = 2 + 2 * len(BEAT_HARMONICS) + 2  # flag, log-tempo, beat phases, bar phase
TEMPO_RANGE = (30.0, 300.0)  # BPM read from a prompt outside it are not taken as a tempo
CONTROL_DROPOUT = 0.2  # training rows given no clock (and, drawn apart, no key): prompts without them still work

_BPM = re.compile(r"(\d{2,3}(?:\.\d+)?)\s*(?:-\s*\d{2,3}\s*)?(?:bpm\b|beats per minute)", re.IGNORECASE)
_METER = re.compile(r"\b([2-7])/(4|8)\b")
# "D major", "F# minor", "E-flat major", "B flat minor", "A♭ major"; a lower-case letter is a word ("a minor chord")
_KEY = re.compile(r"\b([A-G])(?:(?:\s*-\s*|\s+)(flat|sharp)\b|([b#♭♯]))?\s+(major|minor)\b([- ]key\b)?")
_MODE_ONLY = re.compile(r"\b(major|minor)[- ]key\b", re.IGNORECASE)
_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHIFT = {"flat": -1, "b": -1, "♭": -1, "sharp": 1, "#": 1, "♯": 1}


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


def caption_key(caption: str) -> tuple[int, int] | None:
    """(tonic pitch class 0-11 or -1, mode 0 major / 1 minor) a caption names: "in E-flat major" ->
    (3, 0); "a minor-key lament" -> (-1, 1); None when it names neither."""
    match = _KEY.search(caption)
    # "A minor-key lament": the article, not the note A
    if match is not None and not (match.group(1) == "A" and match.group(5) and not any(match.groups()[1:3])):
        letter, word, sign, mode, _ = match.groups()
        return (_PITCH[letter] + _SHIFT.get(word or sign or "", 0)) % 12, MODES.index(mode)
    match = _MODE_ONLY.search(caption)
    return (-1, MODES.index(match.group(1).lower())) if match else None


def no_controls(rows: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[rows, 5] controls that ask for nothing: no clock, no key."""
    controls = torch.zeros(rows, len(CONTROL_COLUMNS), device=device)
    controls[:, 3:] = -1
    return controls


def control_rows(captions: list[str], starts: torch.Tensor | None = None) -> torch.Tensor:
    """[B, 5] float controls (CONTROL_COLUMNS) for captions: what each names, where its window starts."""
    rows = no_controls(len(captions))
    for i, caption in enumerate(captions):
        tempo, key = caption_tempo(caption), caption_key(caption)
        if tempo is not None:
            rows[i, :2] = torch.tensor(tempo)
        if key is not None:
            rows[i, 3:] = torch.tensor(key, dtype=rows.dtype)
    if starts is not None:
        rows[:, 2] = starts.to(rows.dtype)
    return rows


def clock_features(positions: torch.Tensor, controls: torch.Tensor, frame_rate: float) -> torch.Tensor:
    """positions [B, T] (the frame each input predicts, counted in the window) and controls [B, 5] ->
    [B, T, CLOCK_FEATURES] float32; rows whose bpm is 0 are all zero."""
    controls = controls.float()
    bpm, bar, first = controls[:, 0:1], controls[:, 1:2].clamp(min=1.0), controls[:, 2:3]
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

    def forward(self, positions: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        features = clock_features(positions, controls, self.frame_rate)
        return self.proj(features.to(self.proj.weight.dtype))


class KeyEmbedding(nn.Module):
    """controls [B, 5] -> [B, d]: a vector for the tonic plus one for the mode (each zero when not
    named), both starting at zero."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.tonic = nn.Embedding(12, d_model)
        self.mode = nn.Embedding(len(MODES), d_model)
        nn.init.zeros_(self.tonic.weight)
        nn.init.zeros_(self.mode.weight)

    def forward(self, controls: torch.Tensor) -> torch.Tensor:
        tonic, mode = controls[:, 3].long(), controls[:, 4].long()
        vector = self.tonic(tonic.clamp(min=0)) * (tonic >= 0)[:, None].to(self.tonic.weight.dtype)
        return vector + self.mode(mode.clamp(min=0)) * (mode >= 0)[:, None].to(self.mode.weight.dtype)


def heard_controls(model: nn.Module, positions: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
    """What a model's clock and key vector add to its input [B, T, d] at positions [B, T] (the key at
    every position, BOS included); 0 for a model with neither."""
    heard = model.clock(positions, controls) if model.clock is not None else 0
    return heard + model.key_embed(controls)[:, None] if model.key_embed is not None else heard


def drop_controls(controls: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training: each row's clock, and apart from it its key, switched off with probability p."""
    if p <= 0:
        return controls
    keep = (torch.rand(controls.shape[0], 2, generator=generator) >= p).to(controls.device)
    off = no_controls(controls.shape[0], controls.device)
    controls = torch.where(keep[:, :1], controls, torch.cat([off[:, :2], controls[:, 2:]], dim=1))
    return torch.where(keep[:, 1:], controls, torch.cat([controls[:, :3], off[:, 3:]], dim=1))
