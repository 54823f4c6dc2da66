#!/usr/bin/env bash
# The GPU check, prepared to run on a lent GPU machine in under ten minutes (see benchmarks/gpu.py):
# per-epoch seconds and peak memory of NeuMF, Mult-VAE, SVAE, BPR and iALS at ml-100k and at the
# ML-20M shape, on CUDA and on that machine's CPU side by side. The machine cannot reach the package
# registries: carry a virtual environment built from requirements.txt, or use its own Python with
# torch. Results: benchmarks/results/gpu.{json,md} (copied to $OUT when it is set).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU here'; print(torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total --format=csv || true
timeout 570 python benchmarks/gpu.py --devices cuda,cpu --shapes ml-100k,20m --max-steps 200 --model-timeout 150 --budget 480 "$@"
if [ -n "${OUT:-}" ]; then cp benchmarks/results/gpu.json benchmarks/results/gpu.md "$OUT"/; fi
