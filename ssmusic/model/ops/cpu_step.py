"""The fused CPU decode step of the SSM state: ssd_step.c, built once with the system C compiler.

Why: with many prompts the float32 SSM state (12 layers x 33.5 MB at 128 rows for the small preset)
is the largest thing a decode step touches. The PyTorch reference (ops.scan.ssd_step) passes over it
three times (decay, input, read-out), and inductor does not fuse those passes either (it stores the
new state to a temporary and reads it back); ssd_step.c reads the state once and writes it once.

The shared library is compiled with `-O3 -march=native` the first time a process needs it and
cached under cache.compile_dir()/kernels, keyed by the source, the flags, the compiler and this
CPU, so later processes load it in milliseconds. The compiler is $CC, split as a shell splits it
("ccache gcc", "gcc -m64"), else cc, gcc or clang. Without one (or if the build fails, or
SSMUSIC_CPU_KERNEL=0) `available()` is False and decoding uses the reference; `status()` says why
(generate's sidecars record it) and a warning says so once, unless it was switched off on purpose.
The step is also a torch custom op (`torch.ops.ssmusic.ssd_step_`) so a compiled decode step calls it
as one opaque op.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import warnings
from pathlib import Path

import torch

from ssmusic.io.atomic import atomic_path
from ssmusic.io.cache import compile_dir

SOURCE = Path(__file__).with_name("ssd_step.c")
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-std=c99", "-shared", "-fPIC")
DISABLE_ENV = "SSMUSIC_CPU_KERNEL"  # "0": always the PyTorch reference
# Inside a compiled step, below this many rows inductor's own fused loop for the few-kB state beats an
# opaque call (measured, compiled small-preset step: 1 prompt int8 6.7-7.3 ms without the call,
# 9.3-10.4 ms with it; 4 prompts about even; 8 prompts 24.3 against 20.8 ms in its favour)
COMPILED_MIN_ROWS = 16


def _compiler() -> list[str] | None:
    """The C compiler's command words: $CC as a shell splits it, else the first of cc, gcc, clang."""
    if os.environ.get("CC", "").strip():
        return shlex.split(os.environ["CC"])
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    return [found] if found else None


def _cpu_identity() -> str:
    """-march=native code runs only on CPUs with the same instruction sets: key the cache by them."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        return next((line for line in info.splitlines() if line.startswith("flags")), platform.processor())
    except OSError:
        return platform.machine() + platform.processor()


def fingerprint() -> str:
    """Changes whenever this file (the op and what it declares) or the C source changes."""
    source = SOURCE.read_bytes() if SOURCE.is_file() else b"missing"  # status() says so; compiling still works
    return hashlib.sha256(Path(__file__).read_bytes() + source).hexdigest()[:12]


def library_path(compiler: list[str], defines: tuple[str, ...] = ()) -> Path:
    version = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256("\n".join([SOURCE.read_text(), " ".join(FLAGS + defines), shlex.join(compiler), version,
                                    _cpu_identity()]).encode()).hexdigest()[:16]
    return compile_dir() / "kernels" / f"ssd_step-{key}.so"


def build(compiler: list[str], defines: tuple[str, ...] = ()) -> Path:
    """The shared library for this machine, compiled now unless already cached. `defines`: extra
    -D flags (the tests build the generic loops with -DSSD_STEP_GENERIC)."""
    path = library_path(compiler, defines)
    if not path.is_file():
        with atomic_path(path) as tmp:  # a crash mid-build never leaves a broken library behind
            subprocess.run([*compiler, *FLAGS, *defines, str(SOURCE), "-o", str(tmp), "-lm"], check=True,
                           capture_output=True, text=True, timeout=120)
    return path


def load(path: Path) -> dict:
    """The library's step functions by state dtype."""
    library = ctypes.CDLL(str(path))
    functions = {torch.float32: library.ssd_step_f32, torch.bfloat16: library.ssd_step_bf16}
    for function in functions.values():
        function.restype = None
        function.argtypes = [ctypes.c_void_p] * 8 + [ctypes.c_int64] * 5
    return functions


_functions: dict | None = None  # state dtype -> the loaded C function, once _load() has run
_tried = False
_status = "not loaded yet"


def _failure(compiler: list[str], err: Exception) -> str:
    if isinstance(err, FileNotFoundError) and not SOURCE.is_file():
        return f"{SOURCE.name} is missing from this installation"
    if isinstance(err, subprocess.CalledProcessError):
        detail = (err.stderr or "").strip().splitlines()
        return f"building with {shlex.join(compiler)} failed" + (f": {detail[-1][:200]}" if detail else "")
    return f"building with {shlex.join(compiler)} failed: {err}"


def _load() -> None:
    """Load (building if needed) the step functions; leaves them None without a compiler, on a failed
    build, or when disabled, with the reason in _status. Plain globals, not a cache decorator:
    torch.compile reads them as constants."""
    global _functions, _tried, _status
    _tried = True
    if os.environ.get(DISABLE_ENV) == "0":
        _status = f"off ({DISABLE_ENV}=0)"
        return
    compiler = _compiler()
    try:
        if compiler is None:
            raise OSError("no C compiler found (install gcc, or set CC)")
        _functions = load(build(compiler))
        _status = f"on ({shlex.join(compiler)})"
    except (OSError, subprocess.SubprocessError) as err:
        reason = str(err) if compiler is None else _failure(compiler, err)
        _status = f"off: {reason}"
        warnings.warn(f"ssmusic: the C decode-step kernel is off ({reason}); decoding uses the slower PyTorch "
                      "reference for the SSM state update", RuntimeWarning, stacklevel=3)


def status() -> str:
    """Whether the fused step runs here and why not: "on (gcc)", "off: no C compiler found ..."."""
    available()
    return _status


def available() -> bool:
    """Whether the fused step runs here (loads it at the first call; call it before torch.compile)."""
    if not _tried:
        _load()
    return _functions is not None


def usable(state: torch.Tensor) -> bool:
    """The fused step takes this state: a contiguous float32 or bfloat16 CPU tensor, with the kernel
    built, and no gradient wanted (the kernel has no backward; decoding runs without autograd); in a
    compiled step, only from COMPILED_MIN_ROWS rows on."""
    if torch.compiler.is_compiling() and state.shape[0] < COMPILED_MIN_ROWS:
        return False
    return (state.device.type == "cpu" and state.dtype in (torch.float32, torch.bfloat16) and state.is_contiguous()
            and not torch.is_grad_enabled() and available())


def run(function, state: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
        C: torch.Tensor, D: torch.Tensor | None) -> torch.Tensor:
    """Call one of load()'s functions on tensors (the small inputs made contiguous float32) -> y."""
    rows, heads, headdim, d_state = state.shape
    x, dt, A, B, C = (t.float().contiguous() for t in (x, dt, A, B, C))
    D = None if D is None else D.float().contiguous()
    y = torch.empty(rows, heads, headdim)
    function(state.data_ptr(), x.data_ptr(), dt.data_ptr(), A.data_ptr(), B.data_ptr(), C.data_ptr(),
             None if D is None else D.data_ptr(), y.data_ptr(), rows, heads, headdim, d_state, B.shape[1])
    return y


@torch.library.custom_op("ssmusic::ssd_step_", mutates_args=("state",), device_types="cpu")
def ssd_step_(state: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
              C: torch.Tensor, D: torch.Tensor | None) -> torch.Tensor:
    """ops.scan.ssd_step in one pass (state [R, H, P, N] updated in place; returns y [R, H, P])."""
    return run(_functions[state.dtype], state, x, dt, A, B, C, D)


@ssd_step_.register_fake
def _(state, x, dt, A, B, C, D):
    return state.new_empty(state.shape[:3], dtype=torch.float32)
