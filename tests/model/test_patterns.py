import torch

from ssmusic.model.patterns import build_delay, revert_delay


def test_delay_round_trip_and_layout():
    codes = torch.arange(2 * 3 * 5).reshape(2, 3, 5)
    delayed = build_delay(codes, special=-1)
    assert delayed.shape == (2, 3, 7)
    assert delayed[0, 1, 0] == -1 and delayed[0, 1, 1] == codes[0, 1, 0]
    assert (delayed[:, 2, :2] == -1).all() and (delayed[:, 0, 5:] == -1).all()
    assert torch.equal(revert_delay(delayed), codes)
    logits = torch.randn(2, 3, 7, 11)
    assert revert_delay(logits).shape == (2, 3, 5, 11)


def test_single_codebook_is_identity():
    codes = torch.randint(0, 9, (2, 1, 6))
    assert torch.equal(build_delay(codes, 9), codes) and torch.equal(revert_delay(codes), codes)
