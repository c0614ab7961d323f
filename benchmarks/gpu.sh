#!/usr/bin/env bash
# Measure the GPU path (trainer=gpu: bf16-mixed, cudnn.benchmark) on one CUDA GPU, for docs/benchmarks.md.
#
#   bash benchmarks/gpu.sh [RESULTS_DIR]
#
# Writes one JSON record per configuration to RESULTS_DIR (default: benchmarks/results). PYTHON selects
# the interpreter (default: .venv/bin/python). Synthetic faces keep the script independent of any
# downloaded data set.
# NOTE: not yet run on a GPU; the step counts aim at about 10 minutes in all and are an estimate.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-benchmarks/results}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$results"

base_64=(data=synthetic resolution=64x64 model=base data.batch_size=16)
rafd_512=(data=synthetic resolution=512x640 model=base data.batch_size=8)

bench() {
    local name=$1
    shift
    echo "== $name"
    "$python" benchmarks/speed.py --json "$results/$name.json" "$@" trainer=gpu trainer.enable_progress_bar=false
}

bench gpu_64_bf16 --steps 300 --warmup 30 --render-py "${base_64[@]}"
bench gpu_64_bf16_compile --steps 300 --warmup 50 "${base_64[@]}" compile=true
# The headline job of the original RaFD work: 100 epochs of 8,040 images at 512x640, batch 8.
bench gpu_512x640_bf16 --steps 150 --warmup 20 --job-epochs 100 --job-images 8040 "${rafd_512[@]}"
bench gpu_512x640_bf16_compile --steps 150 --warmup 40 --job-epochs 100 --job-images 8040 "${rafd_512[@]}" compile=true
bench gpu_512x640_fp32 --steps 100 --warmup 20 --job-epochs 100 --job-images 8040 "${rafd_512[@]}" trainer.precision=32-true
