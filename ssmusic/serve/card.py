"""A model's card: what it was trained on, what it can and cannot do, and prompts to try.

It lives in the model folder as `model_card.json` (optional; the shipped model has one), so the page,
the docs and whoever trains a new model read and write the same file:

    {"summary": "one paragraph",
     "knows": ["what prompts it follows", ...],
     "does_not_know": ["what it ignores or gets wrong", ...],
     "examples": [{"prompt": "a slow Bach chorale played on a church organ", "seconds": 10}, ...]}
"""

from __future__ import annotations

import json
from pathlib import Path

from ssmusic.errors import SsmusicError

CARD_FILE = "model_card.json"
MAX_EXAMPLES = 24


def _texts(card: dict, key: str, path: Path) -> list[str]:
    value = card.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SsmusicError(f"{path}: {key}: expected a list of texts")
    return value


def read_model_card(model_dir: str | Path | None) -> dict:
    """The card of the model in `model_dir`, or an empty one (no examples) if it has none."""
    empty = {"summary": None, "knows": [], "does_not_know": [], "examples": []}
    path = Path(model_dir or ".") / CARD_FILE
    if model_dir is None or not path.is_file():
        return empty
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SsmusicError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(card, dict):
        raise SsmusicError(f"{path}: expected a JSON object")
    summary = card.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise SsmusicError(f"{path}: summary: expected a text")
    examples = []
    for i, example in enumerate(card.get("examples", [])[:MAX_EXAMPLES]):
        example = {"prompt": example} if isinstance(example, str) else example
        if not isinstance(example, dict) or not isinstance(example.get("prompt"), str):
            raise SsmusicError(f"{path}: examples[{i}]: expected a prompt text or {{\"prompt\": ..., \"seconds\": ...}}")
        seconds = example.get("seconds")
        if seconds is not None and (not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0):
            raise SsmusicError(f"{path}: examples[{i}].seconds: expected a positive number")
        examples.append({"prompt": example["prompt"], "seconds": seconds})
    return {"summary": summary, "knows": _texts(card, "knows", path),
            "does_not_know": _texts(card, "does_not_know", path), "examples": examples}
