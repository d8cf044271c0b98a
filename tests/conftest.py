import os

import pytest
import torch

# Tests run in parallel (pytest -n 2): one thread per worker avoids oversubscribing 2 cores.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# Tests that take the `device` fixture run on SSMUSIC_TEST_DEVICE (default cpu): benchmarks/gpu_check.sh
# sets it to cuda so those tests run with CUDA tensors; the others stay on the CPU.
TEST_DEVICE = os.environ.get("SSMUSIC_TEST_DEVICE", "cpu")


@pytest.fixture
def device() -> str:
    if TEST_DEVICE == "cuda" and not torch.cuda.is_available():
        pytest.fail("SSMUSIC_TEST_DEVICE=cuda but torch sees no CUDA device")
    return TEST_DEVICE


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _cpu_unless_device(request, monkeypatch):
    """Tests that do not take `device` train on the CPU also where a GPU is visible: `ssmusic train`'s
    "auto" device would otherwise pick CUDA, with bf16 autocast and kernels that are not
    bit-reproducible, while they assert CPU results (exact resume, float32 losses). Only ssmusic's
    choice is pinned: patching torch.cuda.is_available itself stops Triton finding its driver."""
    if "device" not in request.fixturenames:
        from ssmusic.training import distributed

        monkeypatch.setattr(distributed, "uses_cuda", lambda config: config.device == "cuda")


@pytest.fixture(scope="session")
def tiny_codec_dir(tmp_path_factory):
    """A tiny offline codec (16 x 2 codebooks) fitted on tones: fast to fit, encode and decode."""
    from ssmusic.codec.transform import TransformCodecConfig, fit_codec

    directory = tmp_path_factory.mktemp("tiny_codec")
    t = torch.arange(22050) / 22050
    wavs = [0.3 * torch.sin(2 * torch.pi * f * t) for f in (220, 330, 440, 660)]
    fit_codec(wavs, TransformCodecConfig(card=16, n_codebooks=2, griffin_lim_iters=2), iters=2,
              progress=False).save(directory)
    return str(directory)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_codec_dir):
    """A prepared dataset: 12 train / 2 valid / 2 test clips of 1 s, with cached MiniLM text."""
    import csv

    import soundfile

    from ssmusic.data.prepare import PrepareSettings, prepare

    audio = tmp_path_factory.mktemp("tiny_audio")
    rows = []
    t = torch.arange(16000) / 16000
    for i in range(16):
        freq = 220 * 2 ** ((i % 8) / 12)
        wave = 0.3 * torch.sin(2 * torch.pi * freq * t) * (1 + 0.5 * torch.sin(2 * torch.pi * (i % 3 + 1) * t))
        soundfile.write(audio / f"tone{i:02d}.wav", wave.numpy(), 16000)
        split = "valid" if i in (12, 13) else "test" if i in (14, 15) else "train"
        rows.append({"path": f"tone{i:02d}.wav", "caption": f"a tone at {freq:.0f} Hz", "split": split})
    with (audio / "captions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "caption", "split"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path_factory.mktemp("tiny_data")
    prepare(audio, audio / "captions.csv", out, tiny_codec_dir, None, PrepareSettings(clip_seconds=1.0),
            progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_dataset):
    """A tiny SiMBA trained for a few steps on tiny_dataset: a complete model directory."""
    from ssmusic.training.train import TrainConfig, train

    run = tmp_path_factory.mktemp("tiny_run")
    config = TrainConfig(preset="tiny", steps=4, batch_size=4, eval_every=100, save_every=100, warmup_steps=1,
                         model_overrides={"d_model": 32, "n_layers": 2, "headdim": 16, "d_state": 8}, device="cpu")
    return train(tiny_dataset, run, config, progress=False)


@pytest.fixture
def transformers_mamba2_in_pytorch():
    """transformers' Mamba2Mixer as the PyTorch reference it is meant to be here (see
    ssmusic.experiments.bench.peers.transformers_mamba2_scan_in_pytorch)."""
    from ssmusic.experiments.bench.peers import transformers_mamba2_scan_in_pytorch

    with transformers_mamba2_scan_in_pytorch():
        yield
