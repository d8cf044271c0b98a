"""`--device` moves every component of the pipeline: the LM, the codec and the text encoder
(checked on the meta device, which needs no GPU, and on the test device: CUDA under
benchmarks/gpu_check.sh), and the codec decodes in batches."""

import torch

from ssmusic.codec.codecs import load_codec
from ssmusic.pipeline import TextToMusic


def _tensors(pipe: TextToMusic) -> dict[str, torch.Tensor]:
    backend = pipe.codec.backend
    found = {f"lm.{k}": v for k, v in [*pipe.lm.named_parameters(), *pipe.lm.named_buffers()]}
    found.update({f"text_encoder.{k}": v for k, v in [*pipe.text_encoder.model.named_parameters(),
                                                       *pipe.text_encoder.model.named_buffers()]})
    found.update({f"codec.{k}": v for k, v in vars(backend).items() if isinstance(v, torch.Tensor)})
    return found


def test_from_pretrained_puts_every_component_on_the_requested_device(tiny_model_dir):
    pipe = TextToMusic.from_pretrained(tiny_model_dir, device="meta")
    assert set(pipe.devices().values()) == {torch.device("meta")}
    tensors = _tensors(pipe)
    assert any(k.startswith("codec.") for k in tensors) and any(k.startswith("text_encoder.") for k in tensors)
    assert [k for k, v in tensors.items() if v.device.type != "meta"] == []


def test_to_moves_every_component(tiny_model_dir):
    pipe = TextToMusic.from_pretrained(tiny_model_dir)
    assert set(pipe.devices().values()) == {torch.device("cpu")}
    pipe.to("meta")
    assert set(pipe.devices().values()) == {torch.device("meta")}
    assert [k for k, v in _tensors(pipe).items() if v.device.type != "meta"] == []


def test_codec_decodes_in_batches_with_the_same_audio(tiny_codec_dir, device):
    codec = load_codec(tiny_codec_dir, device=device)
    codes = torch.randint(0, codec.card, (5, codec.n_codebooks, 12))
    assert [k for k, v in vars(codec.backend).items() if isinstance(v, torch.Tensor) and v.device.type != device] == []
    whole = codec.decode(codes)
    # the same audio up to float order (batched FFTs and products sum in another order): 2e-4 measured
    torch.testing.assert_close(codec.decode(codes, batch_size=2), whole, atol=1e-3, rtol=0)
    assert whole.shape[0] == 5 and whole.device.type == "cpu"  # audio comes back to the CPU, to be written
    if device != "cpu":  # and the same audio as the CPU decodes, up to float order
        torch.testing.assert_close(whole, load_codec(tiny_codec_dir, device="cpu").decode(codes), atol=1e-3, rtol=0)


def test_generation_runs_with_the_components_moved(tiny_model_dir, device):
    pipe = TextToMusic.from_pretrained(tiny_model_dir, device=device)
    assert {d.type for d in pipe.devices().values()} == {device}
    assert [k for k, v in _tensors(pipe).items() if v.device.type != device] == []
    audio, rate = pipe.generate(["a tone"], seconds=0.1, seed=0)
    assert audio.shape[0] == 1 and torch.isfinite(audio).all() and rate == pipe.sample_rate
