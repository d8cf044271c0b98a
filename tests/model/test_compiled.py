"""The compiled decode step (ssmusic.model.compiled) against the eager reference, on a 2-layer tiny SiMBA:
logits and sampled codes, for float32 and the bf16 / int8 decode weights; its on-disk cache; no
recompiles from one frame to the next. One compile per (rows, dtype), shared by the module."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch._dynamo.utils import counters

from ssmusic.model import compiled, presets
from ssmusic.errors import SsmusicError
from ssmusic.model.lm import MusicLM
from ssmusic.model.sampling import SamplingParams

# largest |logit| difference, compiled vs eager with the same weights: float32 differs only in the
# order of sums (measured ~1e-6); bf16 / int8 products may round differently inside fused loops
TOLERANCE = {"float32": 1e-4, "bfloat16": 2e-2, "int8": 2e-2}
FRAMES = 10


def _model() -> MusicLM:
    torch.manual_seed(0)
    return MusicLM(presets.preset("tiny", n_layers=2, n_codebooks=2, dropout=0.0)).eval()


def _inputs(model: MusicLM):
    torch.manual_seed(1)
    # two rows: the CFG pair of one prompt, so generation below reuses the graph these compile
    codes = torch.randint(0, model.config.card, (2, 2, FRAMES))
    return codes, torch.randn(2, 5, model.config.text_dim)


@pytest.fixture(scope="module")
def cache(request, tmp_path_factory):
    """pytest's own cache directory (.pytest_cache), kept between runs as users keep theirs: the
    first run compiles (~1 min on 2 busy cores), later ones load. A fresh one without that plugin."""
    if request.config.cache is None:
        return tmp_path_factory.mktemp("compile_cache")
    return request.config.cache.mkdir("ssmusic-compile")


@pytest.fixture(scope="module")
def pair(cache):
    """(eager, compiled) models with the same weights; the compiled one's cache in `cache`."""
    return _model(), compiled.compile_decode(_model(), cache)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_compiled_logits_match_eager(pair, dtype):
    eager, fast = pair
    codes, text = _inputs(eager)
    reference = eager.set_decode_dtype(dtype).recurrent_logits(codes, text)
    logits = fast.set_decode_dtype(dtype).recurrent_logits(codes, text)
    assert compiled.is_compiled(fast) and not compiled.is_compiled(eager)
    assert (logits - reference).abs().max().item() < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_compiled_logits_match_eager_on_the_test_device(device, dtype, cache):
    """The compiled step where inductor writes GPU kernels (Triton) instead of C++ loops: CUDA under
    benchmarks/gpu_check.sh. On the CPU this is test_compiled_logits_match_eager."""
    if device == "cpu":
        pytest.skip("on the CPU: test_compiled_logits_match_eager")
    eager = _model().to(device)
    fast = compiled.compile_decode(_model().to(device), cache)
    codes, text = (t.to(device) for t in _inputs(eager))
    reference = eager.set_decode_dtype(dtype).recurrent_logits(codes, text)
    assert (fast.set_decode_dtype(dtype).recurrent_logits(codes, text) - reference).abs().max().item() < TOLERANCE[dtype]


def test_compiled_generation_samples_the_same_codes(pair):
    eager, fast = pair
    text = _inputs(eager)[1][:1]
    sampling = SamplingParams(cfg_scale=3.0, top_k=20, seed=0)
    for model in pair:
        model.set_decode_dtype("float32")
    reference = eager.generate(text, None, FRAMES, sampling)
    assert torch.equal(fast.generate(text, None, FRAMES, sampling), reference)


def test_frames_do_not_recompile(pair):
    _, fast = pair
    fast.set_decode_dtype("float32")
    codes, text = _inputs(fast)
    fast.recurrent_logits(codes[..., :3], text)  # compiled (or loaded) for these shapes
    graphs = counters["stats"]["unique_graphs"]
    with torch._dynamo.config.patch(error_on_recompile=True):  # later frames, positions not seen yet
        fast.recurrent_logits(codes, text)
    assert counters["stats"]["unique_graphs"] == graphs


def test_a_fresh_process_loads_the_step_from_the_disk_cache(pair, cache):
    """The module's compiles wrote the cache; a new process compiling the same step must hit it
    (AOTAutograd and FX-graph cache hits, no misses) rather than compile again."""
    eager, fast = pair
    fast.set_decode_dtype("float32").recurrent_logits(*_inputs(fast))
    assert any(cache.rglob("*.py")), "no generated code under the cache directory"
    code = ("import json, torch; from torch._dynamo.utils import counters; "
            "from tests.model.test_compiled import _model, _inputs; from ssmusic.model import compiled; "
            "torch.set_num_threads(1); m = compiled.compile_decode(_model(), __import__('sys').argv[1]); "
            "m.recurrent_logits(*_inputs(m)); "
            "print('COUNTERS ' + json.dumps({**counters['aot_autograd'], **counters['inductor']}))")
    out = subprocess.run([sys.executable, "-c", code, str(cache)], capture_output=True, text=True, timeout=300)
    line = next((x for x in out.stdout.splitlines() if x.startswith("COUNTERS ")), None)
    assert line, out.stderr[-2000:]
    found = json.loads(line[len("COUNTERS "):])
    assert found.get("autograd_cache_hit", 0) >= 1 and found.get("fxgraph_cache_hit", 0) >= 1, found
    assert found.get("autograd_cache_miss", 0) == 0 and found.get("fxgraph_cache_miss", 0) == 0, found


def test_attention_backbones_are_refused():
    torch.manual_seed(0)
    model = MusicLM(presets.preset("tiny", backbone="transformer", n_layers=1, dropout=0.0))
    with pytest.raises(SsmusicError, match="recurrent backbones only"):
        compiled.compile_decode(model)


def test_eager_decode_restores_the_reference(tmp_path):
    model = compiled.compile_decode(_model(), tmp_path)
    assert compiled.is_compiled(model)
    assert not compiled.is_compiled(compiled.eager_decode(model))
    assert model.step.__func__ is MusicLM.step


def test_graphs_are_cached_per_version_of_the_cpu_step_op(tmp_path, monkeypatch):
    from ssmusic.model.compiled import use_disk_cache
    from ssmusic.model.ops import cpu_step

    # use_disk_cache sets TORCHINDUCTOR_CACHE_DIR: restored after the test
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))
    graphs = use_disk_cache(tmp_path)
    assert graphs == tmp_path / f"graphs-{cpu_step.fingerprint()}" and graphs.is_dir()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(graphs)


def test_caption_lengths_share_one_graph_with_cross_attention(cache):
    """Cross-attention keeps the caption in the decode state: its memory is padded to a few lengths
    (CrossAttention.bucketed), so captions of other lengths reuse the compiled step (one graph per
    caption length before), with the logits of the eager step."""
    torch.manual_seed(0)
    config = presets.preset("tiny", n_layers=2, n_codebooks=2, conditioning="cross", dropout=0.0)
    eager, fast = MusicLM(config).eval(), MusicLM(config).eval()
    fast.load_state_dict(eager.state_dict())
    compiled.compile_decode(fast, cache)
    codes = torch.randint(0, config.card, (2, 2, 4))
    fast.recurrent_logits(codes, torch.randn(2, 5, config.text_dim))  # compiled (or loaded) once
    graphs = counters["stats"]["unique_graphs"]
    with torch._dynamo.config.patch(error_on_recompile=True):
        for length in (3, 9, 16):
            text = torch.randn(2, length, config.text_dim)
            torch.testing.assert_close(fast.recurrent_logits(codes, text), eager.recurrent_logits(codes, text),
                                       atol=TOLERANCE["float32"], rtol=0)
    assert counters["stats"]["unique_graphs"] == graphs


def test_a_model_with_controls_compiles_its_clock_and_key_into_the_step(cache):
    """The beat clock reads the position and the controls in the decode state; the compiled step must
    sample what the eager one does with them, and something else without them."""
    def make() -> MusicLM:
        torch.manual_seed(0)
        model = MusicLM(presets.preset("tiny", n_layers=2, conditioning="cross", dropout=0.0,
                                       tempo_clock_fps=43.06640625, key_embedding=True)).eval()
        for name, param in model.named_parameters():  # trained controls (they start at zero)
            if name.startswith(("clock.", "key_embed.")):
                torch.nn.init.normal_(param, std=0.5)
        return model

    eager, fast = make(), compiled.compile_decode(make(), cache)
    text = torch.randn(1, 5, eager.config.text_dim)
    controls = torch.tensor([[140.0, 4, 0, 2, 0]])
    sampling = SamplingParams(cfg_scale=3.0, top_k=5, seed=1)
    reference = eager.generate(text, None, 20, sampling, controls=controls)
    assert torch.equal(fast.generate(text, None, 20, sampling, controls=controls), reference)
    assert not torch.equal(fast.generate(text, None, 20, sampling), reference)
