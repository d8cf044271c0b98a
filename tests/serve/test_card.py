"""A model's card (model_card.json in its folder): what the page shows about the model."""

import json

import pytest

from ssmusic.errors import SsmusicError
from ssmusic.checks import check_prompt
from ssmusic.pipeline import DEFAULT_MODEL_DIR
from ssmusic.serve.card import CARD_FILE, read_model_card


def test_the_shipped_model_has_a_card_with_valid_examples():
    card = read_model_card(DEFAULT_MODEL_DIR)
    assert card["summary"] and card["knows"] and card["does_not_know"] and len(card["examples"]) >= 4
    for example in card["examples"]:
        check_prompt(example["prompt"], allow_empty=False, max_chars=500)  # what the server would accept
        assert 0 < example["seconds"] <= 60  # within serve's default --max-seconds


def test_a_model_without_a_card_has_no_examples(tmp_path):
    assert read_model_card(tmp_path) == {"summary": None, "knows": [], "does_not_know": [], "examples": []}
    assert read_model_card(None)["examples"] == []


def test_examples_may_be_plain_prompts(tmp_path):
    (tmp_path / CARD_FILE).write_text(json.dumps({"examples": ["a drum groove", {"prompt": "a march", "seconds": 4}]}))
    assert read_model_card(tmp_path)["examples"] == [{"prompt": "a drum groove", "seconds": None},
                                                     {"prompt": "a march", "seconds": 4}]


@pytest.mark.parametrize("card,field", [({"knows": "drums"}, "knows"), ({"examples": [{"seconds": 3}]}, "examples[0]"),
                                        ({"examples": [{"prompt": "x", "seconds": -1}]}, "examples[0].seconds"),
                                        ({"summary": 5}, "summary"), ([1], "JSON object")])
def test_a_broken_card_names_its_file_and_field(tmp_path, card, field):
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(SsmusicError, match=f"{CARD_FILE}: .*") as refused:
        read_model_card(tmp_path)
    assert field in str(refused.value)
