"""ssmusic: text -> tokens -> state-space LM -> tokens -> audio.

Public API (imported lazily so `import ssmusic` stays cheap):
    LMConfig, MusicLM          the language model (ssmusic.config, ssmusic.model.lm)
    TextToMusic                captions in, audio out (ssmusic.pipeline)
    load_codec                 audio codecs (ssmusic.codec.codecs)
    load_text_encoder          frozen text encoders (ssmusic.text)
"""

from __future__ import annotations

from typing import Any

from ssmusic.config import LMConfig
from ssmusic.errors import SsmusicError

__all__ = ["LMConfig", "MusicLM", "SsmusicError", "TextToMusic", "load_codec", "load_text_encoder"]

_LAZY = {
    "MusicLM": ("ssmusic.model.lm", "MusicLM"),
    "TextToMusic": ("ssmusic.pipeline", "TextToMusic"),
    "load_codec": ("ssmusic.codec.codecs", "load_codec"),
    "load_text_encoder": ("ssmusic.text", "load_text_encoder"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ssmusic' has no attribute {name!r}")
