import subprocess
import sys

import ssmusic


def test_public_names_resolve_to_their_modules():
    from ssmusic.codec.codecs import load_codec
    from ssmusic.model.lm import MusicLM
    from ssmusic.pipeline import TextToMusic
    from ssmusic.text import load_text_encoder

    assert ssmusic.load_codec is load_codec
    assert ssmusic.load_text_encoder is load_text_encoder
    assert ssmusic.TextToMusic is TextToMusic
    assert ssmusic.MusicLM is MusicLM
    for name in ssmusic.__all__:
        assert getattr(ssmusic, name) is not None


def test_import_stays_cheap():  # the lazy names do not pull torch-heavy modules at import time
    code = "import sys, ssmusic; print(any(m in sys.modules for m in ('ssmusic.pipeline', 'ssmusic.codec.codecs', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
