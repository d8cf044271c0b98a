"""Audio files in and out: soundfile (wav/flac/ogg/mp3) + soxr resampling. Writes are atomic."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ssmusic.errors import SsmusicError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


def read_audio(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = False
               ) -> tuple[torch.Tensor, int]:
    """-> (wav [C, N] float32 in [-1, 1], sample_rate). Resampled when `sample_rate` is given."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise SsmusicError(f"{path}: audio file not found")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    except Exception as err:  # soundfile raises its own LibsndfileError / RuntimeError types
        raise SsmusicError(f"{path}: cannot read audio ({err})".splitlines()[0]) from None
    if data.shape[0] == 0:
        raise SsmusicError(f"{path}: audio file holds no samples")
    if mono:
        data = data.mean(axis=1, keepdims=True)
    if sample_rate is not None and rate != sample_rate:
        data = resample_array(data, rate, sample_rate)
        rate = sample_rate
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def skip(skipped: list[dict], name: str | os.PathLike, error: Exception) -> None:
    """Record a file that cannot be used and why: `prepare` and `codebooks` name such files and go on."""
    reason = str(error) if isinstance(error, SsmusicError) else f"cannot read ({getattr(error, 'strerror', None) or error})"
    skipped.append({"path": str(name), "reason": reason})


def read_or_skip(path: str | os.PathLike, skipped: list[dict], name: str | os.PathLike | None = None,
                 sample_rate: int | None = None, mono: bool = False) -> tuple[torch.Tensor, int] | None:
    """read_audio, or None with the file and its reason added to `skipped` (as `name`, default the path)."""
    try:
        return read_audio(path, sample_rate, mono)
    except (SsmusicError, OSError) as err:
        skip(skipped, path if name is None else name, err)
        return None


def report_skipped(skipped: list[dict]) -> None:
    for problem in skipped:
        print(f"skipped {problem['path']}: {problem['reason']}")


def resample_array(data: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """[N, C] float32 -> [M, C] at rate_out (soxr, high quality)."""
    import soxr

    if rate_in == rate_out:
        return data
    return soxr.resample(data, rate_in, rate_out, quality="HQ").astype(np.float32)


def resample(wav: torch.Tensor, rate_in: int, rate_out: int) -> torch.Tensor:
    """[..., N] tensor -> [..., M] at rate_out."""
    if rate_in == rate_out:
        return wav
    flat = wav.reshape(-1, wav.shape[-1]).T.cpu().numpy()
    out = torch.from_numpy(np.ascontiguousarray(resample_array(flat, rate_in, rate_out).T))
    return out.reshape(*wav.shape[:-1], -1).to(wav.dtype)


def write_wav(path: str | os.PathLike, wav: torch.Tensor, sample_rate: int) -> None:
    """Write [C, N] or [N] audio as 16-bit PCM WAV, atomically (temp file + rename)."""
    import soundfile

    data = wav.detach().float().cpu()
    if data.dim() == 1:
        data = data[None]
    data = data.clamp(-1.0, 1.0).T.numpy()
    from ssmusic.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), data, sample_rate, subtype="PCM_16", format="WAV")


def list_audio_files(directory: str | os.PathLike) -> list[Path]:
    """Audio files under `directory` (recursive), sorted for a deterministic order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SsmusicError(f"{directory}: not a directory")
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
