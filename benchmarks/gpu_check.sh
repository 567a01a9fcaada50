#!/usr/bin/env bash
# A short bf16 alignment-step check on a CUDA machine: step time, memory, TFLOP/s.
# Run from the repository root with the package importable (PYTHONPATH=src or the venv).
set -euo pipefail
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi -L
echo "== default student (the 2-core default run's size)"
python3 benchmarks/train_throughput.py --device cuda --batch 256 --steps 20
echo "== OPERA-GT-sized student (dim 384, depth 12, heads 6)"
python3 benchmarks/train_throughput.py --device cuda --batch 256 --steps 20 --dim 384 --depth 12 --heads 6
echo "== same, clip loss"
python3 benchmarks/train_throughput.py --device cuda --batch 256 --steps 20 --dim 384 --depth 12 --heads 6 --loss clip
echo "== OPERA-GT-sized student, batch 1024"
python3 benchmarks/train_throughput.py --device cuda --batch 1024 --steps 10 --dim 384 --depth 12 --heads 6
echo "== OPERA-GT-sized student, batch 1024, torch.compile"
python3 benchmarks/train_throughput.py --device cuda --batch 1024 --steps 10 --dim 384 --depth 12 --heads 6 --compile
