"""ssmusic: text -> tokens -> state-space LM -> tokens -> audio.

Public API (imported lazily so `import ssmusic` stays cheap):
    LMConfig, MusicLM          the language model (ssmusic.config, ssmusic.lm)
"""

from __future__ import annotations

from typing import Any

from ssmusic.config import LMConfig
from ssmusic.errors import SsmusicError

__all__ = ["LMConfig", "MusicLM", "SsmusicError"]

_LAZY = {
    "MusicLM": ("ssmusic.lm", "MusicLM"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ssmusic' has no attribute {name!r}")
