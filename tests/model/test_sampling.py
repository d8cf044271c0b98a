import torch

from ssmusic.model.sampling import sample_next


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
