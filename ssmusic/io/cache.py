"""Where ssmusic keeps what it computes once per machine and reuses: compiled decode steps and the
CPU step kernel, streaming contexts, audio embeddings for evaluation.

root(): $SSMUSIC_CACHE_DIR, else $XDG_CACHE_HOME/ssmusic, else ~/.cache/ssmusic. Compiled code can
be put elsewhere on its own with $SSMUSIC_COMPILE_CACHE (e.g. a shared disk for a cluster).
"""

from __future__ import annotations

import os
from pathlib import Path

COMPILE_ENV = "SSMUSIC_COMPILE_CACHE"


def root() -> Path:
    base = os.environ.get("SSMUSIC_CACHE_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssmusic"


def compile_dir() -> Path:
    """Inductor's graphs of the compiled decode step and the built CPU kernels."""
    return Path(os.environ.get(COMPILE_ENV) or root() / "compile")
