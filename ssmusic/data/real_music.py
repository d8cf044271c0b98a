"""Freely licensed real recordings that Debian ships as packages (game soundtracks), split by track.

    apt-get install wesnoth-1.16-music warzone2100-music

| package | files | licence (from /usr/share/doc/<package>/copyright and the albums' license.txt) |
|---|---|---|
| wesnoth-1.16-music | 41 Ogg Vorbis tracks, 44.1 kHz stereo | GPL-2+ (Battle for Wesnoth's data) |
| warzone2100-music | 30 Opus tracks, 48 kHz stereo | original soundtrack (Martin Severn, 1999): GPL-2+; legacy and aftermath soundtracks (LupusMechanicus): CC-BY-SA-3.0+ or GPL-2+ |

A split is by track, never by segment: a held-out track contributes no second of itself to training.
Versions of one piece (`track3` and `track3_enhanced`, `frantic` and `frantic-old`) share a split.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ssmusic.errors import SsmusicError

DEBIAN_MUSIC = {
    "wesnoth-1.16-music": ("/usr/share/games/wesnoth/1.16/data/core/music", "*.ogg", "GPL-2+"),
    "warzone2100-music": ("/usr/share/games/warzone2100/music", "**/*.opus",
                          "GPL-2+ (original soundtrack); CC-BY-SA-3.0+ or GPL-2+ (legacy, aftermath soundtracks)"),
}
SPLITS = ("train", "valid", "test")


def piece(path: Path) -> str:
    """The piece a file records: versions of one piece (enhanced, old) share the name."""
    return re.sub(r"(_enhanced|-old)$", "", path.stem)


def split_of(package: str, name: str) -> str:
    """A fixed split per piece from a hash of its name: 1 in 6 test, 1 in 12 valid, the rest train
    (independent of which other files exist, so adding a track moves no other)."""
    bucket = int(hashlib.sha1(f"{package}/{name}".encode()).hexdigest(), 16) % 12
    return "test" if bucket < 2 else "valid" if bucket == 2 else "train"


def debian_tracks(split: str | None = None, roots: dict[str, tuple[str, str, str]] | None = None) -> list[dict]:
    """[{path, package, license, piece, split}] for every installed track (sorted by path); with
    `split`, that split's only. Raises a clear error when none of the packages is installed."""
    if split is not None and split not in SPLITS:
        raise SsmusicError(f"real music split: expected one of {SPLITS}, got {split!r}")
    rows = []
    for package, (root, pattern, license_) in (roots or DEBIAN_MUSIC).items():
        for path in sorted(Path(root).glob(pattern)):
            name = piece(path)
            rows.append({"path": path, "package": package, "license": license_, "piece": name,
                         "split": split_of(package, name)})
    if not rows:
        raise SsmusicError("real music: no tracks found; install them with "
                           f"`apt-get install {' '.join(roots or DEBIAN_MUSIC)}`")
    return [row for row in rows if split is None or row["split"] == split]
