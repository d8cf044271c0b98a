import pytest
import torch

from ssmusic.errors import BadValue
from ssmusic.model.sampling import MAX_SEED, SamplingParams, sample_next


def test_top_k_one_is_argmax_and_top_k_restricts():
    logits = torch.randn(4, 2, 50)
    assert torch.equal(sample_next(logits, top_k=1), logits.argmax(-1))
    top3 = logits.topk(3, dim=-1).indices
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        tokens = sample_next(logits, top_k=3, generator=g)
        assert (top3 == tokens[..., None]).any(-1).all()


def test_top_p_keeps_the_nucleus_only():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_next(logits, top_k=0, top_p=0.8, generator=g)) for _ in range(200)}
    assert seen == {0, 1}


def test_seeded_sampling_is_reproducible():
    logits = torch.randn(3, 100)
    a = sample_next(logits, 50, 0.9, 1.2, torch.Generator().manual_seed(7))
    b = sample_next(logits, 50, 0.9, 1.2, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


BAD = [
    ("cfg_scale", float("nan"), "cfg"), ("cfg_scale", True, "cfg"), ("top_k", float("nan"), "top_k"),
    ("top_k", 2.0, "top_k"), ("temperature", float("inf"), "temperature"), ("top_p", -0.1, "top_p"),
    ("seed", -1, "seed"), ("seed", 2**64, "seed"), ("seed", 10**5000, "seed"), ("seed", 1e400, "seed")]


@pytest.mark.parametrize("field,value,name", BAD, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD)])  # no 5,000-digit ids
def test_each_rule_names_its_argument_for_every_front_end(field, value, name):
    with pytest.raises(BadValue) as refused:
        SamplingParams(**{field: value})
    flag = "--" + name.replace("_", "-")
    assert refused.value.name == name and str(refused.value).startswith(f"{flag}: expected ")
    assert refused.value.worded(name).startswith(f"{name}: expected ")  # as the web API says it
    assert len(str(refused.value)) < 120  # a 5,000-digit seed is described, not printed


def test_the_seed_range_is_what_torch_takes():
    SamplingParams(seed=0).generator("cpu")
    SamplingParams(seed=MAX_SEED).generator("cpu")
