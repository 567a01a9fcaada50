#!/usr/bin/env bash
# The GPU check: the training path on a CUDA machine, one short script.
#   1. the engine's and models' tests on CUDA (deterministic kill-and-resume with
#      bf16 autocast, torch.compile of the step, the bf16 MAE fix);
#   2. every student kind through the align stage (benchmarks/gpu_encoders.py);
#   3. bf16 alignment-step throughput, eager and compiled: step time, memory, TFLOP/s;
#   4. evaluation embeddings: CUDA (bf16) against CPU (fp32), and throughput.
# Run from the repository root with the package importable (PYTHONPATH=src or the venv).
set -euo pipefail
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=src:. TOKENIZERS_PARALLELISM=false
nvidia-smi -L
echo "== tests on CUDA"
status=0  # a failing test is reported at the end; the measurements still run
python3 -m pytest -q -p no:cacheprovider -p no:logging tests/test_training.py \
  tests/test_models.py -k "not pipelines and not sentence_teacher and not hf_encoder_teacher and not damaged_teacher" \
  || status=1
echo "== every student through align"
python3 benchmarks/gpu_encoders.py --clips 256 --batch 64
echo "== default student, batch 256"
python3 benchmarks/train_throughput.py --device cuda --batch 256 --steps 10 --rounds 3 --compile
echo "== OPERA-GT-sized student (dim 384, depth 12, heads 6), batch 1024"
python3 benchmarks/train_throughput.py --device cuda --batch 1024 --steps 10 --rounds 3 \
  --dim 384 --depth 12 --heads 6 --compile
echo "== evaluation embeddings on CUDA vs CPU"
python3 benchmarks/gpu_evaluate.py --clips 4096 --batch 512
exit $status
