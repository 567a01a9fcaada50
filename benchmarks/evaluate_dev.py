"""The evaluate stage on the real CirCor development set, with training seeds.

Runs ``kedro run --env=circor_dev --pipelines=evaluate`` twice from a cold start
(embedding cache and the seed models' checkpoints removed first): once with no
extra training seed (the pipeline's own models only) and then with the environment's
``evaluate.train_seeds`` (three trained models per encoder), in the same session, and prints both wall
times, their ratio and the first against the 20-minute budget of issue 18. The stages
before ``evaluate`` must have run (``dvc repro envs/circor_dev/dvc.yaml``).

    python benchmarks/evaluate_dev.py [--env circor_dev] [--budget 1200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def cold_run(env: str, root: Path, params: str) -> float:
    for folder in ("07_model_output/embedding_cache", "06_models/checkpoints/seeds"):
        shutil.rmtree(root / folder, ignore_errors=True)
    cmd = ["kedro", "run", f"--env={env}", "--pipelines=evaluate", f"--params={params}"]
    env_vars = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", HF_HUB_OFFLINE="1")
    t = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, env=env_vars, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", default="circor_dev")
    ap.add_argument("--budget", type=float, default=1200.0, help="seconds")
    args = ap.parse_args()
    globals_ = yaml.safe_load((REPO / "conf" / args.env / "globals.yml").read_text())
    root = REPO / globals_["data_root"]
    if not (root / "06_models/aligned/model.safetensors").exists():
        sys.exit(
            f"{root}: no aligned model; run dvc repro envs/{args.env}/dvc.yaml first"
        )
    quiet = "evaluate.embed.progress=false,pretrain.train.progress=false,"
    quiet += "align.train.progress=false"
    single = cold_run(args.env, root, quiet + ",evaluate.train_seeds=[]")
    # last, so that the environment's own (seeded) outputs are what stays
    seeded = cold_run(args.env, root, quiet)
    print(f"evaluate, the environment's training seeds: {seeded:7.1f} s")
    print(f"evaluate, the pipeline's models only:      {single:7.1f} s")
    verdict = "met" if seeded <= args.budget else "NOT met"
    print(f"ratio {seeded / single:.1f}x; budget {args.budget:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
