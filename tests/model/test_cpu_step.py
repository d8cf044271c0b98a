import pytest
import torch

from ssmusic.model.ops import cpu_step, kernels
from ssmusic.model.ops.scan import ssd_sequential, ssd_step

needs_kernel = pytest.mark.skipif(not cpu_step.available(), reason="no C compiler: the reference decodes")


def _inputs(rows, heads, headdim, d_state, groups, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, heads, headdim, d_state, generator=g), torch.randn(rows, heads, headdim, generator=g),
            torch.rand(rows, heads, generator=g), -torch.rand(heads, generator=g) * 2,
            torch.randn(rows, groups, d_state, generator=g), torch.randn(rows, groups, d_state, generator=g),
            torch.randn(heads, generator=g))


@needs_kernel
@pytest.mark.parametrize("rows,heads,headdim,d_state,groups", [
    (2, 16, 64, 64, 1), (1, 4, 8, 16, 2), (3, 4, 8, 5, 4), (19, 2, 3, 33, 1)])
@pytest.mark.parametrize("with_D", [True, False])
def test_matches_the_reference_step(rows, heads, headdim, d_state, groups, with_D):
    state, x, dt, A, B, C, D = _inputs(rows, heads, headdim, d_state, groups)
    D = D if with_D else None
    expected_state = state.clone()
    expected = ssd_step(expected_state, x, dt, A, B, C, D)
    pointer = state.data_ptr()
    out = cpu_step.ssd_step_(state, x, dt, A, B, C, D)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, expected_state, atol=1e-6, rtol=1e-6)
    assert state.data_ptr() == pointer  # in place


@needs_kernel
def test_many_steps_match_the_sequential_recurrence():
    g = torch.Generator().manual_seed(1)
    rows, length, heads, headdim, d_state = 2, 40, 4, 8, 16
    x, dt = torch.randn(rows, length, heads, headdim, generator=g), torch.rand(rows, length, heads, generator=g)
    A, D = -torch.rand(heads, generator=g) * 2, torch.randn(heads, generator=g)
    B, C = torch.randn(rows, length, 2, d_state, generator=g), torch.randn(rows, length, 2, d_state, generator=g)
    y_ref, s_ref = ssd_sequential(x, dt, A, B, C, D)
    state = torch.zeros(rows, heads, headdim, d_state)
    ys = [cpu_step.ssd_step_(state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D) for t in range(length)]
    torch.testing.assert_close(torch.stack(ys, 1), y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(state, s_ref, atol=1e-4, rtol=1e-4)


@needs_kernel
def test_decoding_uses_it_and_training_does_not(monkeypatch):
    calls = []
    real = cpu_step.ssd_step_
    monkeypatch.setattr(cpu_step, "ssd_step_", lambda *a: calls.append(1) or real(*a))
    state, x, dt, A, B, C, D = _inputs(2, 4, 8, 16, 1)
    with torch.no_grad():
        kernels.state_step(state, x, dt, A, B, C, D)
    assert calls == [1]
    kernels.state_step(state, x, dt, A, B, C, D)  # grad enabled: the differentiable reference
    kernels.state_step(state.transpose(2, 3).contiguous().transpose(2, 3), x, dt, A, B, C, D)
    assert calls == [1]


@needs_kernel
def test_a_compiled_step_calls_it_only_for_many_rows(monkeypatch):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with torch.no_grad():
        assert not cpu_step.usable(torch.zeros(cpu_step.COMPILED_MIN_ROWS - 1, 2, 2, 2))
        assert cpu_step.usable(torch.zeros(cpu_step.COMPILED_MIN_ROWS, 2, 2, 2))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: False)
    with torch.no_grad():
        assert cpu_step.usable(torch.zeros(2, 2, 2, 2))  # eager: every row count


@needs_kernel
@pytest.mark.parametrize("rows", [2, cpu_step.COMPILED_MIN_ROWS])
def test_a_compiled_function_matches_the_reference(rows):
    state, x, dt, A, B, C, D = _inputs(rows, 4, 8, 16, 1)
    expected_state = state.clone()
    expected = ssd_step(expected_state, x, dt, A, B, C, D)
    compiled = torch.compile(kernels.state_step, fullgraph=True, dynamic=False)
    with torch.no_grad():
        out = compiled(state, x, dt, A, B, C, D)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, expected_state, atol=1e-6, rtol=1e-6)


@pytest.fixture
def unloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("SSMUSIC_COMPILE_CACHE", str(tmp_path))
    monkeypatch.setattr(cpu_step, "_tried", False)
    monkeypatch.setattr(cpu_step, "_functions", None)
    return tmp_path


def test_without_a_compiler_the_reference_decodes(unloaded, monkeypatch):
    monkeypatch.setattr(cpu_step, "_compiler", lambda: None)
    assert not cpu_step.available()
    state = torch.zeros(1, 2, 2, 2)
    with torch.no_grad():
        assert not cpu_step.usable(state)


def test_it_can_be_switched_off(unloaded, monkeypatch):
    monkeypatch.setenv(cpu_step.DISABLE_ENV, "0")
    assert not cpu_step.available()
    assert not list(unloaded.rglob("*.so"))


def test_a_failed_build_falls_back(unloaded, monkeypatch):
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    assert not cpu_step.available()
    assert not [p for p in unloaded.rglob("*") if p.is_file()]  # no half-built library left behind


@needs_kernel
def test_the_library_is_built_once_and_then_loaded(unloaded, monkeypatch):
    assert cpu_step.available()
    built = list(unloaded.rglob("*.so"))
    assert len(built) == 1 and built[0].parent == unloaded / "kernels"
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(cpu_step, "_tried", False)
    runs = []
    real_run = cpu_step.subprocess.run
    monkeypatch.setattr(cpu_step.subprocess, "run", lambda cmd, **kw: runs.append(cmd) or real_run(cmd, **kw))
    assert cpu_step.available()
    assert all("--version" in cmd for cmd in runs)  # asked the compiler its version, compiled nothing
    assert built[0].stat().st_mtime_ns == stamp


@needs_kernel
def test_a_bfloat16_state_matches_the_reference():
    state, x, dt, A, B, C, D = _inputs(3, 4, 8, 33, 2)
    state = state.bfloat16()
    expected_state = state.clone()
    expected = ssd_step(expected_state, x, dt, A, B, C, D)
    out = cpu_step.ssd_step_(state, x, dt, A, B, C, D)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)  # read out before rounding, both
    assert state.dtype == torch.bfloat16
    # the same float32 value rounded to nearest even; FMA contraction may move it by one bf16 step
    torch.testing.assert_close(state.float(), expected_state.float(), atol=0, rtol=2 ** -7)
    assert (state == expected_state).float().mean() > 0.99


@needs_kernel
def test_the_generic_loops_match_the_reference_too(unloaded):
    """Machines without AVX512-BF16 compile the portable bfloat16 loop: built here on purpose."""
    functions = cpu_step.load(cpu_step.build(cpu_step._compiler(), ("-DSSD_STEP_GENERIC",)))
    for dtype in (torch.float32, torch.bfloat16):
        state, x, dt, A, B, C, D = _inputs(3, 4, 8, 33, 2)
        state = state.to(dtype)
        expected_state = state.clone()
        expected = ssd_step(expected_state, x, dt, A, B, C, D)
        out = cpu_step.run(functions[dtype], state, x, dt, A, B, C, D)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state.float(), expected_state.float(), atol=0, rtol=2 ** -7)


def test_the_fingerprint_follows_the_kernel_source(monkeypatch, tmp_path):
    before = cpu_step.fingerprint()
    edited = tmp_path / "ssd_step.c"
    edited.write_text(cpu_step.SOURCE.read_text() + "\n/* edited */\n")
    monkeypatch.setattr(cpu_step, "SOURCE", edited)
    assert cpu_step.fingerprint() != before


@needs_kernel
@pytest.mark.parametrize("words", [["ccache"], [], ["-m64"]], ids=["ccache-gcc", "gcc", "gcc-m64"])
def test_cc_with_a_launcher_or_flags_still_builds(unloaded, monkeypatch, words):
    """CC is a command line, as make reads it: "ccache gcc" or "gcc -m64" build the kernel too."""
    import shutil

    gcc = shutil.which("gcc") or pytest.skip("no gcc")
    if words and words[0] == "ccache":
        # a stand-in launcher that runs the rest of its command line (no ccache needed)
        launcher = unloaded / "launcher"
        launcher.write_text('#!/bin/sh\nexec "$@"\n')
        launcher.chmod(0o755)
        command = f"{launcher} {gcc}"
    else:
        command = " ".join([gcc, *words])
    monkeypatch.setenv("CC", command)
    assert cpu_step.available(), cpu_step.status()
    assert cpu_step.status() == f"on ({command})"


def test_an_off_kernel_says_why(unloaded, monkeypatch):
    monkeypatch.setenv("CC", "false")
    with pytest.warns(RuntimeWarning, match="C decode-step kernel is off"):
        assert not cpu_step.available()
    assert cpu_step.status().startswith("off: building with false failed")
    monkeypatch.setattr(cpu_step, "_tried", False)
    monkeypatch.setattr(cpu_step, "SOURCE", unloaded / "missing.c")
    monkeypatch.delenv("CC")
    with pytest.warns(RuntimeWarning):
        assert not cpu_step.available()
    assert cpu_step.status() == "off: missing.c is missing from this installation"
    assert cpu_step.fingerprint()  # --compile still keys its cache
    monkeypatch.setattr(cpu_step, "_tried", False)
    monkeypatch.setenv(cpu_step.DISABLE_ENV, "0")
    assert cpu_step.status() == f"off ({cpu_step.DISABLE_ENV}=0)"
