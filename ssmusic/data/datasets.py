"""Reading a prepared dataset (see ssmusic.data.prepare for the layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ssmusic.io.atomic import read_json
from ssmusic.errors import SsmusicError
from ssmusic.model.controls import control_rows


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


class DataOrder:
    """A seeded permutation per epoch, sharded across ranks; its position is checkpointed."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if size < world:
            raise SsmusicError(f"the train split has {size} clips, fewer than the {world} processes")
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.epoch, self.offset = 0, 0

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=g).tolist()[self.rank::self.world]

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            order = self._order()
            chunk = order[self.offset:self.offset + n - len(out)]
            out.extend(chunk)
            self.offset += len(chunk)
            if self.offset >= len(order):
                self.epoch, self.offset = self.epoch + 1, 0
        return out


def random_crop(codes: torch.Tensor, crop: int, pad_id: int, generator: torch.Generator,
                return_starts: bool = False):
    """A random window of `crop` frames per row of codes [B, K, T] (and, with `return_starts`, the
    frame each window starts at [B]). Padding is only ever a clip's tail; a window inside it has no
    target (loss 0/0 = NaN), so windows lie inside the valid frames when those are longer than
    `crop`, else start at 0 (all valid frames)."""
    valid = (codes[:, 0] != pad_id).sum(-1)
    last_start = (valid - crop).clamp(min=0)
    starts = (torch.rand(codes.shape[0], generator=generator) * (last_start + 1)).long()
    index = starts[:, None] + torch.arange(crop)
    windows = codes.gather(2, index[:, None, :].expand(-1, codes.shape[1], -1))
    return (windows, starts) if return_starts else windows


def load_batch(dataset: CodesDataset, indices: list[int], device: torch.device, crop: int,
               generator: torch.Generator | None, encoder) -> tuple[torch.Tensor, ...]:
    """Clips `indices` as (codes, text, text_mask, controls) on `device`: codes randomly cropped to
    `crop` frames (0: whole), captions from the dataset's cache or encoded by `encoder`, controls [B, 5]
    what each caption asks for (its BPM and key, where its window starts: model/controls.py)."""
    batch = collate([dataset[i] for i in indices])
    codes, starts = batch["codes"], None
    if crop and codes.shape[-1] > crop:
        codes, starts = random_crop(codes, crop, dataset.manifest["card"], generator, return_starts=True)
    if "text" in batch:
        text, mask = batch["text"], batch["text_mask"]
    else:
        text, mask = encoder.encode(batch["caption"])
    controls = control_rows(batch["caption"], starts)
    return codes.to(device), text.to(device), mask.to(device), controls.to(device)
