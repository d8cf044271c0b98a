"""What a generation asks for, checked before any model loads: the prompts, the duration, the device
and where the audio goes. `ssmusic generate` runs them all before loading anything; TextToMusic
calls the same ones (from_pretrained the device, generate/stream the prompts and the duration), so a
Python caller gets the same one-line errors. Each raises SsmusicError naming the flag and what it
expected.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Iterable

from ssmusic.errors import BadValue, SsmusicError

# Generous but finite: beyond this a typo (e.g. 30000 instead of 30) is far more likely than intent.
MAX_SECONDS = 3600.0


def check_seconds(seconds: object, limit: float = MAX_SECONDS) -> float:
    """A duration to generate: a positive, finite number up to `limit` (MAX_SECONDS, or a smaller
    limit a front end sets, e.g. `serve --max-seconds`)."""
    limit = min(limit, MAX_SECONDS)
    if (not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds)
            or not 0 < seconds <= limit):
        raise BadValue("seconds", f"a positive duration up to {limit:g} s", seconds)
    return float(seconds)


def check_prompt(prompt: object, allow_empty: bool = True, max_chars: int | None = None) -> str:
    """A text description: a str (an empty one asks for unconditional music, unless a front end
    refuses it), at most `max_chars` characters where a front end sets a limit."""
    if not isinstance(prompt, str):
        raise BadValue("prompt", "a text description of the music", prompt,
                       got_text="nothing" if prompt is None else type(prompt).__name__)
    if not allow_empty and not prompt.strip():
        raise BadValue("prompt", "a description of the music to generate", prompt, got_text="an empty text")
    if max_chars is not None and len(prompt) > max_chars:
        raise BadValue("prompt", f"at most {max_chars} characters", prompt, got_text=f"{len(prompt)}")
    return prompt


def check_prompts(prompts: object) -> list[str]:
    """A list of prompts, each a check_prompt; a single string is one prompt (not one per character)."""
    if isinstance(prompts, str):
        return [prompts]
    if isinstance(prompts, (bytes, bytearray, dict)) or not isinstance(prompts, Iterable):
        raise BadValue("prompts", "a text description or a list of them", prompts, got_text=type(prompts).__name__)
    prompts = [check_prompt(prompt) for prompt in prompts]
    if not prompts:
        raise SsmusicError("no prompts given: pass at least one description")
    return prompts


def check_device(device) -> str:
    """A device torch can use here: cpu, cuda[:N] with a CUDA device present, mps where available,
    or meta (no data; tests)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise SsmusicError(f"--device {device}: expected cpu or cuda (or cuda:N)") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build" if torch.version.cuda is None
                   else f"torch (CUDA {torch.version.cuda}) finds no GPU")
            raise SsmusicError(f"--device {device}: no CUDA device here ({why}); use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise SsmusicError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise SsmusicError(f"--device {device}: MPS is not available here; use --device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps", "meta"):
        raise SsmusicError(f"--device {device}: expected cpu or cuda (or cuda:N)")
    return str(parsed)


def check_writable(paths: Iterable[str | os.PathLike], flag: str = "-o") -> None:
    """Every path can be written: not a directory, and its folder exists or can be made under the
    nearest existing one, where a probe file is created and removed (a read-only disk or missing
    permission shows now, not after minutes of generation)."""
    probed: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            raise SsmusicError(f"{flag} {path}: is a directory, expected a file path")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise SsmusicError(f"{flag} {path}: cannot write there ({folder} is not a directory)")
        if folder in probed:
            continue
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".ssmusic-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise SsmusicError(f"{flag} {path}: cannot write to {folder} ({err.strerror or err})") from None
        probed.add(folder)
