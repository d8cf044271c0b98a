#!/usr/bin/env bash
# Installs everything ssmusic needs on a fresh Debian/Ubuntu machine, CPU only:
#   - system packages: FluidSynth and a General MIDI SoundFont (for the demo dataset), Chromium and
#     its WebDriver (the web demo's browser tests), and python3-venv where the Python cannot create
#     virtualenvs; only when running as root or with sudo, otherwise it says what is missing
#   - PyTorch 2.13.0 CPU build: from PyTorch's CPU wheel index (an unpinned or plain-index torch
#     pulls a multi-GB CUDA build), else, where that index is unreachable, the plain pin
#   - ssmusic itself, editable, with its test tools and the web demo's server (extras test, demo)
# Where it installs: the virtualenv `python` (or $PYTHON) belongs to, if it is one; otherwise a
# `.venv` it creates here, because a stock Debian 12 / Ubuntu 24.04 Python is "externally managed"
# (PEP 668) and pip refuses to install into it. Then: .venv/bin/python -m pytest -n 2
# GPU users: see docs/gpu.md instead.
# INSTALL_DRY_RUN=1 prints the commands instead of running them (the tests use it).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
TORCH="torch==2.13.0"
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

run() {
  if [ "${INSTALL_DRY_RUN:-0}" = 1 ]; then echo "+ $*"; else "$@"; fi
}

in_virtualenv() {  # a venv's interpreter has sys.prefix != sys.base_prefix
  "$1" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null
}

need_apt=()
command -v fluidsynth >/dev/null 2>&1 || need_apt+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need_apt+=(fluid-soundfont-gm)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # Debian's names
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# generate --compile (torch.compile's inductor) builds its CPU kernels with a C++ compiler
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
if ! in_virtualenv "$PYTHON" && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  need_apt+=(python3-venv)  # Debian/Ubuntu ship venv's pip bootstrap separately
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
    echo "not root and no sudo: install these system packages yourself: ${need_apt[*]}"
  else
    run $SUDO apt-get update -q
    run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
  fi
fi

if in_virtualenv "$PYTHON"; then
  echo "installing into the active virtualenv ($("$PYTHON" -c 'import sys; print(sys.prefix)'))"
else
  echo "no virtualenv active: installing into $(pwd)/.venv"
  [ -x .venv/bin/python ] || run "$PYTHON" -m venv .venv
  PYTHON=.venv/bin/python
fi

run "$PYTHON" -m pip install -q --upgrade pip
# A short timeout and no retries: where the CPU index is unreachable the fallback starts at once.
if ! run "$PYTHON" -m pip install -q --timeout 10 --retries 0 --index-url "$TORCH_CPU_INDEX" "$TORCH"; then
  echo "PyTorch's CPU wheel index is unreachable: installing $TORCH from the configured index instead"
  run "$PYTHON" -m pip install -q "$TORCH"
fi
run "$PYTHON" -m pip install -q -e ".[test,demo]"
if [ "${INSTALL_DRY_RUN:-0}" != 1 ]; then
  echo "ssmusic installed: $("$PYTHON" -m ssmusic --version)"
fi
