"""Streaming: audio chunks while the LM is still decoding.

    MusicLM.generate_frames ──codes, one frame at a time──► StreamDecoder ──► audio chunks [B, 1, n]

A codec decoder looks at neighbouring frames (convolutions, an LSTM, Griffin-Lim's overlapping
STFT frames), so a chunk cannot be decoded alone without seams. `StreamDecoder` decodes overlapping
windows: to emit the audio of frames [a, b) it decodes frames [a - left, b + right) and keeps the
middle. It therefore waits for `right` frames of look-ahead before emitting a frame. With enough
context the concatenated chunks equal a one-shot decode of the same codes; how much context each
codec needs is measured (`measure_context`, by perturbing one frame and watching how far the
decoded audio changes), never assumed. benchmarks/stream_overlap.py records the numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from ssmusic.io import cache
from ssmusic.codec.codecs import Codec
from ssmusic.errors import SsmusicError

# Streamed audio may differ from a one-shot decode of the same codes by at most this fraction of
# the clip's peak amplitude. Convolutional decoders (DAC; EnCodec, whose LSTM's memory fades): half
# of one 16-bit PCM step at full scale (2^-16), so the WAV files agree up to rounding; beyond the
# measured context only float rounding is left. Griffin-Lim: 2e-3 (-54 dB). Its error shrinks
# ~10x per 4 frames of context down to a float-rounding floor of ~5e-5 (32-48 frames on the shipped
# codec; benchmarks/stream_overlap.py), so 2^-16 would sit at that floor and cost seconds of look-ahead;
# 2e-3 is inaudible beside Griffin-Lim's own phase artefacts and reached with ~0.7 s of context.
TOLERANCE = 2.0**-16
GRIFFIN_LIM_TOLERANCE = 2e-3
# measure_context holds each side of a window to this fraction of the tolerance: a stream window lacks
# both sides at once (their errors add), and on the shipped model's generations the stream error at
# the measured context was up to 2.8x the probe's per-side error (benchmarks/stream_overlap.py).
PER_SIDE = 1 / 8
# Bumped when measure_context changes, so contexts cached on disk by an older version are measured again.
CONTEXT_VERSION = 2


def default_tolerance(codec: Codec) -> float:
    """Griffin-Lim's (a mel codec decoding without its learned decoder) or the exact one."""
    backend = codec.backend
    griffin_lim = getattr(backend, "position_dependent", False) and getattr(backend, "vocoder", None) is None
    return GRIFFIN_LIM_TOLERANCE if griffin_lim else TOLERANCE


@dataclass(frozen=True)
class Context:
    """Frames of codes a window needs on each side so its middle matches a one-shot decode."""

    left: int
    right: int


def window_error(codec: Codec, codes: torch.Tensor, whole: torch.Tensor, start: int, stop: int,
                 left: int, right: int) -> float:
    """Largest |difference| between frames [start, stop) decoded from the window
    [start - left, stop + right) and the same frames of `whole` (the one-shot decode of `codes`),
    relative to the one-shot clip's peak."""
    spf = codec.samples_per_frame
    first = max(0, start - left)
    window = codec.decode(codes[..., first:stop + right], first_frame=first).float().clamp(-1.0, 1.0)
    part = window[..., (start - first) * spf:(stop - first) * spf]
    reference = whole[..., start * spf:stop * spf]
    return float((part - reference).abs().max() / whole.abs().max().clamp(min=1e-12))


def _smallest(fits, limit: int) -> int | None:
    """Smallest n in [0, limit] with fits(n), searching 0, 1, 2, 4, ... then bisecting (assumes
    more context never hurts); None when even `limit` does not fit."""
    if fits(0):
        return 0
    low, high = 0, 1
    while not fits(high):
        if high >= limit:
            return None
        low, high = high, min(2 * high, limit)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def codec_fingerprint(codec: Codec, tolerance: float) -> str:
    """Identifies a codec's decoder for the context cache: its name, shape and a checksum of its
    weights (so a retrained or re-initialised codec of the same name is measured again)."""
    import hashlib

    backend = codec.backend
    tensors = [p.detach() for p in backend.model.parameters()] if hasattr(backend, "model") else [backend.codebooks]
    if getattr(backend, "vocoder", None) is not None:  # the learned decoder's weights decide its reach
        tensors += [p.detach() for p in backend.vocoder.parameters()]
    checksum = sum(float(t.double().abs().sum()) for t in tensors)
    config = getattr(backend, "config", None)
    key = (f"v{CONTEXT_VERSION}|{codec.name}|{codec.sample_rate}|{codec.frame_rate}|{codec.card}|"
           f"{codec.n_codebooks}|{config}|{checksum!r}|{tolerance!r}")
    return hashlib.sha1(key.encode()).hexdigest()


# Contexts measured for the codecs that ship with the package, keyed like the user's cache: the first
# stream of the default model then starts at once instead of measuring for tens of seconds. A codec
# whose fingerprint differs (other weights, tolerance or measure_context version) is measured as before.
SHIPPED_CONTEXTS = Path(__file__).parents[1] / "assets" / "stream_context.json"


def _cache_file() -> Path:
    return cache.root() / "stream_context.json"


def stream_context(codec: Codec, tolerance: float | None = None) -> Context:
    """measure_context(), remembered per codec object and on disk, or shipped (SHIPPED_CONTEXTS) for the
    package's own codec (the measurement decodes a few hundred windows: 10-50 s for the shipped
    Griffin-Lim codec on a 2-core CPU, minutes for DAC-44k; benchmarks/stream_overlap.py records it)."""
    from ssmusic.io.atomic import read_json, write_json_atomic

    tolerance = default_tolerance(codec) if tolerance is None else tolerance
    cached = getattr(codec, "_stream_context", None)
    if cached is not None and cached[0] == tolerance:
        return cached[1]
    key, path = codec_fingerprint(codec, tolerance), _cache_file()
    try:
        known = read_json(path) if path.is_file() else {}
    except (SsmusicError, OSError, ValueError):
        known = {}  # an unreadable cache is measured again and rewritten
    entry = known.get(key) or read_json(SHIPPED_CONTEXTS).get(key)
    if isinstance(entry, dict):
        context = Context(int(entry["left"]), int(entry["right"]))
    else:
        context = measure_context(codec, tolerance)
        try:
            write_json_atomic(path, {**known, key: {"codec": codec.name, "left": context.left, "right": context.right}})
        except OSError:
            pass  # a read-only home only costs the measurement next time
    codec._stream_context = (tolerance, context)
    return context


def probe_audio(sample_rate: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """A music-like test signal [1, N]: a melody of long held notes (1.5 s, three harmonics, soft attack
    and release) over a held bass note. Random codes are the wrong probe: they decode to noise,
    which Griffin-Lim settles locally, while held tones carry phase across many frames (the hard
    case: generated music holds one code for seconds)."""
    generator = torch.Generator().manual_seed(seed)
    n = round(seconds * sample_rate)
    t = torch.arange(n) / sample_rate
    note = 1.5
    pitches = 220 * 2 ** (torch.randint(0, 24, (int(seconds / note) + 1,), generator=generator) / 12)
    index = (t / note).long()
    phase = torch.cumsum(2 * math.pi * pitches[index] / sample_rate, 0)
    envelope = torch.sin(math.pi * (t / note - index)).clamp(min=0) ** 0.5
    melody = sum(0.3 / h * torch.sin(h * phase) for h in (1, 2, 3)) * envelope
    return (melody + 0.2 * torch.sin(2 * math.pi * 110 * t))[None]


def held_segments(codes: torch.Tensor, frame_rate: float, seed: int = 0) -> torch.Tensor:
    """codes [B, K, T] rearranged into held segments: a random frame of `codes` repeated for 0.1-1.4 s,
    then another, and so on, T frames in all. This is how a model's generations look (the shipped
    model's 10 s clips change code 8-160 times in 431 frames), and it is the probe's hard case for
    Griffin-Lim: a code held over a window and then changed needs ~30% more context than a tone
    sequence or a code held throughout (measured on the shipped codec)."""
    generator = torch.Generator().manual_seed(seed)
    total, order = codes.shape[-1], []
    shortest, longest = max(1, round(0.1 * frame_rate)), max(2, round(1.4 * frame_rate))
    while len(order) < total:
        frame = int(torch.randint(0, total, (1,), generator=generator))
        order += [frame] * int(torch.randint(shortest, longest + 1, (1,), generator=generator))
    return codes[..., torch.tensor(order[:total])]


@torch.no_grad()
def measure_context(codec: Codec, tolerance: float | None = None, limit: int = 32, span: int = 32,
                    seed: int = 0) -> Context:
    """The least left / right context (frames) with which a window's middle `span` frames match a
    one-shot decode: on the codes of `probe_audio`, on four arrangements of them into `held_segments`,
    and on one of its frames held throughout, with all K codebooks and with the first alone; the left
    context with all the right context there is, then the right with all the left, each within
    PER_SIDE x `tolerance` x the clip's peak. The limit doubles when not reached (up to 1024 frames).
    A decoder that declares its finite receptive field (the mel codec's learned decoder) gets exactly
    that: a probe cannot see past it, and can stop short of it (the reach's edge frames weigh little
    on some music and more on other; benchmarks/stream_overlap.py records the error at the reach)."""
    reach = getattr(codec.backend, "receptive_field", None)
    if reach is not None:
        return Context(*reach)
    tolerance = default_tolerance(codec) if tolerance is None else tolerance
    while True:
        frames = 2 * limit + span
        full = codec.encode(probe_audio(codec.sample_rate, frames / codec.frame_rate, seed), codec.sample_rate)
        left = right = 0
        held = full[..., frames // 2, None].expand(-1, -1, frames)  # one code held throughout
        # four arrangements: where a change falls against the window's edge varies a lot between them
        segments = [held_segments(full[..., :frames], codec.frame_rate, seed + i) for i in range(4)]
        probes = [full[..., :frames], held] + segments
        for codes in probes + [codes[:, :1] for codes in probes]:
            whole = codec.decode(codes).float().clamp(-1.0, 1.0)
            start, stop, per_side = limit, limit + span, tolerance * PER_SIDE

            def fits(left: int, right: int) -> bool:
                return window_error(codec, codes, whole, start, stop, left, right) <= per_side

            found = _smallest(lambda n: fits(n, limit), limit), _smallest(lambda n: fits(limit, n), limit)
            if None in found:
                left = right = None
                break
            left, right = max(left, found[0]), max(right, found[1])
        if (left is not None and right is not None) or limit >= 1024:
            break
        limit *= 2
    if left is None or right is None:
        raise SsmusicError(f"codec {codec.name}: no window of up to {limit} frames matches a one-shot "
                           f"decode within {tolerance:.1e}; it cannot be streamed exactly")
    return Context(left, right)


@dataclass
class StreamDecoder:
    """Feed codes as they grow; get each frame's audio once `context.right` later frames exist."""

    codec: Codec
    context: Context
    emitted: int = 0  # frames whose audio has been returned
    decode_seconds: float = field(default=0.0)

    def push(self, codes: torch.Tensor, final: bool = False) -> torch.Tensor:
        """codes [B, K, T]: every frame so far (T never shrinks). -> the audio [B, 1, n] of the
        frames that are now settled (all of them when `final`); n may be 0."""
        total = codes.shape[-1]
        end = total if final else max(self.emitted, total - self.context.right)
        spf = self.codec.samples_per_frame
        if end <= self.emitted:
            return torch.zeros(codes.shape[0], 1, 0)
        start = max(0, self.emitted - self.context.left)
        stop = total if final else min(total, end + self.context.right)
        begin = time.perf_counter()
        audio = self.codec.decode(codes[..., start:stop].cpu(), first_frame=start).float().clamp(-1.0, 1.0)
        self.decode_seconds += time.perf_counter() - begin
        offset = (self.emitted - start) * spf
        chunk = audio[..., offset:] if final else audio[..., offset:offset + (end - self.emitted) * spf]
        self.emitted = end
        return chunk


def decode_in_chunks(codec: Codec, codes: torch.Tensor, chunk_frames: int, context: Context) -> list[torch.Tensor]:
    """Decode codes [B, K, T] as a stream would see them, `chunk_frames` new frames at a time."""
    if chunk_frames < 1:
        raise SsmusicError(f"chunk_frames: expected >= 1, got {chunk_frames}")
    decoder = StreamDecoder(codec, context)
    chunks = []
    total = codes.shape[-1]
    for stop in range(chunk_frames, total, chunk_frames):
        chunks.append(decoder.push(codes[..., :stop]))
    chunks.append(decoder.push(codes, final=True))
    return chunks


def boundary_jumps(audio: torch.Tensor, boundaries: list[int]) -> tuple[float, float]:
    """(largest |x[n] - x[n-1]| across the given sample boundaries, largest anywhere in the clip)
    for mono audio [N]: a seam shows as a boundary jump beyond the clip's own."""
    steps = (audio[1:] - audio[:-1]).abs()
    inside = [steps[b - 1].item() for b in boundaries if 0 < b < audio.shape[-1]]
    return (max(inside) if inside else 0.0), float(steps.max()) if steps.numel() else 0.0


@dataclass
class StreamChunk:
    """One step of `TextToMusic.stream`: new audio, and every frame of codes so far."""

    audio: torch.Tensor  # [B, 1, n] float in [-1, 1], n may be 0 only on the last chunk
    codes: torch.Tensor  # [B, K, T] all new frames generated so far
    frames_done: int
    frames_total: int
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


def stream_frames(frames: Iterator[torch.Tensor], decoder: StreamDecoder, steps: int, chunk_frames: int,
                  sample_rate: int, prompt_codes: torch.Tensor | None = None) -> Iterator[StreamChunk]:
    """Group the LM's frames into chunks of `chunk_frames` new frames of audio (the first one also
    waits for the decoder's look-ahead) and decode each as it completes. With `prompt_codes`, the
    prompt's audio comes first and its codes give the first window its left context."""
    if chunk_frames < 1:
        raise SsmusicError(f"chunk_seconds: must cover at least one codec frame, got {chunk_frames} frames")
    codes = [] if prompt_codes is None else list(prompt_codes.cpu().unbind(-1))
    offset = len(codes)
    for index, frame in enumerate(frames, start=1):
        codes.append(frame.cpu())
        ready = len(codes) - decoder.context.right - decoder.emitted
        if index == steps or ready >= chunk_frames:
            stacked = torch.stack(codes, dim=-1)
            audio = decoder.push(stacked, final=index == steps)
            if audio.shape[-1] or index == steps:
                yield StreamChunk(audio, stacked[..., offset:], index, steps, sample_rate)


def ceil_frames(seconds: float, frame_rate: float) -> int:
    return max(1, math.ceil(seconds * frame_rate - 1e-9))
