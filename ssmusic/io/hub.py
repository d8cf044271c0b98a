"""Loading pretrained weights by Hugging Face hub id or local directory, the same way for codecs,
text encoders and CLAP: a local directory is read offline; a hub id that cannot be fetched (an
offline machine) fails with the exact download command to run on a connected one."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from ssmusic.errors import SsmusicError

T = TypeVar("T")


def load_pretrained(what: str, source: str, load: Callable[[bool], T], pass_as: str, files: str = "") -> T:
    """`load(local_files_only)` for `source` (a hub id or a local directory).

    `what` names the thing in errors ("codec", "text encoder"); `pass_as` says how to hand over the
    downloaded copy ("pass --codec DIR"); `files` lists what the copy must hold, if worth saying."""
    local = Path(source).is_dir()
    try:
        return load(local)
    except (OSError, ValueError) as err:
        if local:
            raise SsmusicError(f"{what} {source!r}: cannot load the local directory ({err})".splitlines()[0]) from None
        holding = f" ({files})" if files else ""
        raise SsmusicError(
            f"{what} {source!r} is not available offline: on a connected machine run `huggingface-cli download "
            f"{source} --local-dir DIR`{holding}, copy DIR here and {pass_as}") from None
