"""Reading a prepared dataset (see ssmusic.prepare for the layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ssmusic.atomic import read_json
from ssmusic.errors import SsmusicError


def load_manifest(data_dir: str | Path) -> dict:
    data_dir = Path(data_dir)
    path = data_dir / "manifest.json"
    if not path.is_file():
        hint = " (an interrupted `ssmusic prepare`? rerun it to finish)" if (data_dir / ".work").is_dir() else ""
        raise SsmusicError(f"{data_dir}: not a prepared dataset, manifest.json is missing{hint}")
    manifest = read_json(path)
    for field in ("codec", "card", "n_codebooks", "frame_rate", "splits", "clip_frames"):
        if field not in manifest:
            raise SsmusicError(f"{path}: missing field {field!r}")
    return manifest


class CodesDataset(Dataset):
    """Clips of one split: item = {codes [K, T] long, caption str, text [S, D] float, text_mask [S] bool}
    (text only when the dataset caches embeddings). Arrays are memory-mapped, not loaded."""

    def __init__(self, data_dir: str | Path, split: str, n_codebooks: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = load_manifest(self.data_dir)
        if split not in self.manifest["splits"]:
            raise SsmusicError(f"{self.data_dir}: no split {split!r} (has {list(self.manifest['splits'])})")
        directory = self.data_dir / split
        self.codes = np.load(directory / "codes.npy", mmap_mode="r")
        with (directory / "captions.jsonl").open(encoding="utf-8") as handle:
            self.captions = [json.loads(line)["caption"] for line in handle]
        self.text = self.text_mask = None
        if self.manifest.get("text_cached") and len(self.captions):
            self.text = np.load(directory / "text.npy", mmap_mode="r")
            self.text_mask = np.load(directory / "text_mask.npy", mmap_mode="r")
        self.n_codebooks = n_codebooks or self.manifest["n_codebooks"]
        if self.n_codebooks > self.manifest["n_codebooks"]:
            raise SsmusicError(f"{self.data_dir}: the model wants {self.n_codebooks} codebooks, the dataset has "
                               f"{self.manifest['n_codebooks']}")
        if len(self.codes) != len(self.captions):
            raise SsmusicError(f"{directory}: codes.npy has {len(self.codes)} clips, captions.jsonl "
                               f"{len(self.captions)}")

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> dict:
        item = {"codes": torch.from_numpy(self.codes[index, : self.n_codebooks].astype(np.int64)),
                "caption": self.captions[index]}
        if self.text is not None:
            item["text"] = torch.from_numpy(self.text[index].astype(np.float32))
            item["text_mask"] = torch.from_numpy(self.text_mask[index].copy())
        return item


def collate(items: list[dict]) -> dict:
    """Stack a list of items; text is trimmed to the longest caption in the batch."""
    batch = {"codes": torch.stack([i["codes"] for i in items]), "caption": [i["caption"] for i in items]}
    if "text" in items[0]:
        mask = torch.stack([i["text_mask"] for i in items])
        width = max(1, int(mask.sum(1).max()))
        batch["text"] = torch.stack([i["text"] for i in items])[:, :width]
        batch["text_mask"] = mask[:, :width]
    return batch
