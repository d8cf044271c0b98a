"""Reading and writing captions CSVs: a dataset's `captions.csv` (path, caption, optional split and
attribute columns, as `ssmusic data demo` and `ssmusic prepare --caption` write and `ssmusic prepare`
reads) and other UTF-8 CSVs of prompts."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from ssmusic.io.atomic import atomic_path

CAPTIONS_FILE = "captions.csv"
MIN_FILES_TO_HOLD_OUT = 10  # below, every file trains (one held-out clip of 9 says little)


def held_out_splits(names: list[str], valid_percent: float = 5.0, test_percent: float = 5.0) -> dict[str, str]:
    """train / valid / test for files that have no split: ordered by a hash of the name (the order they
    come in does not matter), the first valid_percent % are valid and the next test_percent % test, at
    least one each from MIN_FILES_TO_HOLD_OUT files on, so a fine-tune on tens of files still has a
    validation loss before and after; the rest train."""
    order = sorted(names, key=lambda name: hashlib.sha256(name.encode()).hexdigest())

    def count(percent: float) -> int:
        if len(names) < MIN_FILES_TO_HOLD_OUT or percent <= 0:
            return 0
        return max(1, round(len(names) * percent / 100))

    valid, test = count(valid_percent), count(test_percent)
    return {name: "valid" if i < valid else "test" if i < valid + test else "train" for i, name in enumerate(order)}


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a UTF-8 CSV with a header line."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def write_csv(path: str | Path, rows: list[dict], fieldnames: list[str]) -> None:
    """`rows` as a UTF-8 CSV with a header line, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def dataset_rows(directory: str | Path, split: str | None = None) -> list[dict] | None:
    """The rows of DIRECTORY/captions.csv, each `path` made a Path under DIRECTORY; with `split`,
    only that split's rows when the file has a split column. None when there is no captions.csv."""
    directory = Path(directory)
    path = directory / CAPTIONS_FILE
    if not path.is_file():
        return None
    header, rows = read_csv(path)
    if split and "split" in header:
        rows = [row for row in rows if row["split"] == split]
    return [{**row, "path": directory / row["path"]} for row in rows]


def split_paths(directory: str | Path, split: str) -> list[Path] | None:
    """The audio of one split of a dataset directory; None when it has no captions.csv with a split
    column (the caller then decides what the whole directory means)."""
    directory = Path(directory)
    if not (directory / CAPTIONS_FILE).is_file() or "split" not in read_csv(directory / CAPTIONS_FILE)[0]:
        return None
    return [row["path"] for row in dataset_rows(directory, split) or []]
