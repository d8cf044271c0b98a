import pytest
import torch

from ssmusic.errors import SsmusicError
from ssmusic.io.tensors import check_shapes, load_tensors, save_tensors


def test_round_trip_and_unreadable_files(tmp_path):
    save_tensors({"w": torch.arange(6.0).view(2, 3)}, tmp_path / "a.safetensors")
    assert torch.equal(load_tensors(tmp_path / "a.safetensors")["w"], torch.arange(6.0).view(2, 3))
    (tmp_path / "b.safetensors").write_bytes(b"not tensors")
    with pytest.raises(SsmusicError, match="b.safetensors: not a readable safetensors file"):
        load_tensors(tmp_path / "b.safetensors")


def test_a_wrong_shape_is_named_with_what_implies_the_right_one():
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    check_shapes(expected, {"a": torch.ones(2, 3), "b": torch.ones(4)}, "m.safetensors", "lm_config.json")
    check_shapes(expected, {"a": torch.ones(2, 3)}, "m.safetensors", "lm_config.json")  # missing: the caller's check
    with pytest.raises(SsmusicError, match=r"^m.safetensors: b has shape \[5\], lm_config.json implies \[4\]$"):
        check_shapes(expected, {"a": torch.ones(2, 3), "b": torch.ones(5)}, "m.safetensors", "lm_config.json")
