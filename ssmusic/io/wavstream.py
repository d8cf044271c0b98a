"""WAV files that grow while the music is generated, valid at every moment.

The file grows beside its target as NAME.partial.wav (a free variant of that name if a file has
it), which appears atomically as a valid empty WAV
(temp file + rename); each chunk's samples are appended and flushed first, and only then are the
RIFF and data sizes in the header raised to cover them. A reader opening it at any moment sees a
header that describes only samples already on disk, so it reads a shorter but well-formed file.
Complete, it is renamed to NAME.wav; after an error or Ctrl-C it is removed, and a NAME.wav that
was there before is left as it was.
"""

from __future__ import annotations

import math
import os
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssmusic.io.atomic import atomic_path
from ssmusic.errors import SsmusicError

HEADER_BYTES = 44


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """The 44-byte header of 16-bit PCM WAV holding `data_bytes` of samples."""
    block = 2 * channels
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, 16)
            + b"data" + struct.pack("<I", data_bytes))


def pcm16(audio: torch.Tensor) -> bytes:
    """Mono float audio [N] in [-1, 1] -> little-endian 16-bit PCM, converted as libsndfile does
    (x 32768, clipped, rounded down) so a streamed file equals write_wav's of the same audio."""
    data = audio.detach().float().clamp(-1.0, 1.0).cpu().numpy()
    return np.floor(np.clip(data.astype(np.float64) * 32768.0, -32768, 32767)).astype("<i2").tobytes()


def partial_path(path: str | os.PathLike) -> Path:
    """Where the WAV for `path` grows until it is complete: NAME.partial.wav beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def free_partial_path(path: str | os.PathLike) -> Path:
    """partial_path(`path`), or NAME.partial-2.wav, -3, ... when a file of that name is already there:
    it is someone else's, never overwritten."""
    candidate, number = partial_path(path), 1
    while candidate.exists():
        number += 1
        candidate = Path(path).with_name(f"{Path(path).stem}.partial-{number}{Path(path).suffix}")
    return candidate


class GrowingWav:
    """A mono 16-bit WAV growing at free_partial_path(`path`), appended to chunk by chunk; `finish` moves
    it to `path`, `discard` removes it (either way `path` is untouched until then)."""

    def __init__(self, path: str | os.PathLike, sample_rate: int) -> None:
        self.path = Path(path)
        self.partial = free_partial_path(self.path)
        self.sample_rate = sample_rate
        self.data_bytes = 0
        with atomic_path(self.partial) as tmp:  # a valid empty WAV from the first moment
            tmp.write_bytes(wav_header(sample_rate, 0))
        self.handle = open(self.partial, "r+b")

    def append(self, audio: torch.Tensor) -> None:
        data = pcm16(audio.reshape(-1))
        if not data:
            return
        self.handle.seek(HEADER_BYTES + self.data_bytes)
        self.handle.write(data)
        self.handle.flush()
        self.data_bytes += len(data)
        self.handle.seek(4)
        self.handle.write(struct.pack("<I", 36 + self.data_bytes))
        self.handle.seek(40)
        self.handle.write(struct.pack("<I", self.data_bytes))
        self.handle.flush()

    def close(self) -> None:
        if not self.handle.closed:
            os.fsync(self.handle.fileno())
            self.handle.close()

    def finish(self) -> None:
        self.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.close()
        self.partial.unlink(missing_ok=True)


@dataclass
class StreamTiming:
    time_to_first_audio_s: float
    total_s: float
    audio_s: float
    chunks: int
    chunk_seconds: float

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio: below 1, playback never waits after the start."""
        return self.total_s / self.audio_s if self.audio_s else math.inf

    def to_json(self) -> dict:
        return {"time_to_first_audio_s": round(self.time_to_first_audio_s, 4), "total_s": round(self.total_s, 4),
                "audio_s": round(self.audio_s, 4), "real_time_factor": round(self.real_time_factor, 4),
                "chunks": self.chunks, "chunk_seconds": self.chunk_seconds}


def stream_to_wavs(model, prompts: list[str], paths: list[Path], chunk_seconds: float,
                   **generation) -> tuple[torch.Tensor, int, StreamTiming]:
    """model.stream(prompts) into one growing WAV per prompt (GrowingWav: NAME.partial.wav, renamed to
    `paths` when complete) -> (audio [B, 1, N], rate, timing). On an error or Ctrl-C the partial files
    are removed and files already at `paths` stay as they were."""
    start = time.perf_counter()
    files, pieces, first, chunks = [], [], None, 0
    try:
        for path in paths:
            files.append(GrowingWav(path, model.sample_rate))
        for chunk in model.stream(prompts, chunk_seconds=chunk_seconds, **generation):
            if not torch.isfinite(chunk.audio).all():
                raise SsmusicError("generation produced non-finite audio; nothing was written")
            for wav, audio in zip(files, chunk.audio):
                wav.append(audio)
            if chunk.audio.shape[-1] and first is None:
                first = time.perf_counter() - start
            pieces.append(chunk.audio)
            chunks += 1
    except BaseException:
        for wav in files:
            wav.discard()
        raise
    for wav in files:
        wav.finish()
    audio = torch.cat(pieces, dim=-1)
    total = time.perf_counter() - start
    timing = StreamTiming(first if first is not None else total, total, audio.shape[-1] / model.sample_rate,
                          chunks, chunk_seconds)
    print(f"time to first audio {timing.time_to_first_audio_s:.2f} s, real-time factor "
          f"{timing.real_time_factor:.3f} ({timing.total_s:.2f} s for {timing.audio_s:.2f} s of audio)",
          file=sys.stderr)
    return audio, model.sample_rate, timing
