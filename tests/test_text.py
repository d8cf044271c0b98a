import pytest
import torch

from ssmusic.errors import SsmusicError
from ssmusic.text import load_text_encoder


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder()


def test_offline_default_is_minilm(minilm):
    assert minilm.name == "all-MiniLM-L6-v2" and minilm.dim == 384
    emb, mask = minilm.encode(["a slow chorale played on a church organ", "", "fiddle tune"])
    assert emb.shape[0] == 3 and emb.shape[2] == 384 and emb.dtype == torch.float32
    assert mask[1].sum() >= 1  # an empty caption still has special tokens: it is a valid (null-like) input
    assert mask[0].sum() > mask[2].sum() > 0
    assert not emb.requires_grad


def test_padding_does_not_change_real_tokens(minilm):
    short, mask = minilm.encode(["fiddle tune"])
    padded, pmask = minilm.encode(["fiddle tune"], min_tokens=24)
    assert padded.shape[1] == 24 and pmask.sum() == mask.sum()
    n = int(mask.sum())
    torch.testing.assert_close(padded[0, :n], short[0, :n], atol=1e-5, rtol=1e-5)
    # SSM-TTM pads its prompts with another id than the tokenizer's pad: the padded states differ
    other, omask = minilm.encode(["fiddle tune", "a much longer caption than the first one"], min_tokens=24,
                                 min_pad_id=1)
    assert other.shape[1] == 24 and torch.equal(omask[0], pmask[0])
    torch.testing.assert_close(other[0, :n], short[0, :n], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(other[0, -1], padded[0, -1], atol=1e-3)


def test_long_captions_are_truncated_with_a_warning(minilm):
    with pytest.warns(UserWarning, match="truncated"):
        emb, _ = minilm.encode(["la " * 2000])
    assert emb.shape[1] == minilm.max_tokens


def test_tiny_t5_from_a_local_directory(tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer_dir = load_text_encoder().tokenizer  # any tokenizer works for a tiny random T5
    config = T5Config(vocab_size=tokenizer_dir.vocab_size, d_model=16, d_kv=4, d_ff=32, num_layers=1,
                      num_heads=2, decoder_start_token_id=0, pad_token_id=tokenizer_dir.pad_token_id)
    T5ForConditionalGeneration(config).save_pretrained(tmp_path)
    tokenizer_dir.save_pretrained(tmp_path)
    encoder = load_text_encoder(str(tmp_path))
    emb, mask = encoder.encode(["a waltz", "a fugue in d minor"])
    assert encoder.dim == 16 and emb.shape[:2] == mask.shape and emb.shape[2] == 16


def test_unavailable_hub_encoder_says_what_to_download():
    with pytest.raises(SsmusicError, match="huggingface-cli download google/flan-t5-base"):
        load_text_encoder("google/flan-t5-base")


def test_bad_input(minilm):
    with pytest.raises(SsmusicError):
        minilm.encode("not a list")
    with pytest.raises(SsmusicError):
        minilm.encode([])
