#!/usr/bin/env bash
# Installs everything ssmusic needs on a fresh Debian/Ubuntu machine, CPU only:
#   - system packages: FluidSynth and a General MIDI SoundFont (for the demo dataset)
#   - PyTorch 2.13.0 CPU build (pinned: an unpinned torch pulls a multi-GB CUDA build)
#   - ssmusic itself, editable, with its test tools
# It installs into the Python that `python` (or $PYTHON) points at; use a virtualenv if you like.
# GPU users: see README ("GPU set-up") instead.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

need_apt=()
command -v fluidsynth >/dev/null 2>&1 || need_apt+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need_apt+=(fluid-soundfont-gm)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

"$PYTHON" -m pip install -q --upgrade pip
"$PYTHON" -m pip install -q "torch==2.13.0"
"$PYTHON" -m pip install -q -e ".[test]"
echo "ssmusic installed: $("$PYTHON" -m ssmusic --version)"
