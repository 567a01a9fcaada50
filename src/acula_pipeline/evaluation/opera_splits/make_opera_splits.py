"""Write OPERA's published task splits as split files (``id,split`` CSVs).

Not run by the pipeline or CI: it reads a checkout of OPERA's repository
(github.com/evelyn0414/OPERA, MIT licence) and was run once to write the CSVs beside
it. Only plain NumPy string arrays are read (``allow_pickle=False``); OPERA's
``coughvid__*_uuids.npy`` are pickled object arrays and are not opened: the same
uuids and splits are in ``feature/coughvid_eval/{sound_dir_loc,split}_{label}.npy``.

- CoughVID T5 (covid) and T6 (sex): train/val/test per uuid, as OPERA's
  ``linear_evaluation_coughvid`` uses them. OPERA's ``coughvid_wav.py`` names each
  converted file ``fname[:-5]``, which drops the last character of the uuid of
  every ``.ogg`` file; those ids are completed from the uuids of OPERA's copy of
  ``metadata_compiled.csv`` (each must match exactly one).
- Coswara T8 (smoker) and T9 (sex), cough-shallow, ``--mapgoogle True``: OPERA's
  train/test per participant (``google_{label}_cough_split.npy``); its validation set
  is drawn from the training rows by ``sklearn.model_selection.train_test_split``
  (20 %, stratified by label, ``random_state=1337``), reproduced here on the same
  rows in the same order.

Usage: python make_opera_splits.py OPERA_CHECKOUT [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split


def _load(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _write(out: Path, name: str, ids: list[str], splits: list[str], source: str):
    if len(set(ids)) != len(ids):
        raise SystemExit(f"{name}: an id appears twice")
    lines = [f"# {source}", "id,split"] + [
        f"{i},{s}" for i, s in sorted(zip(ids, splits, strict=True))
    ]
    (out / f"{name}.csv").write_text("\n".join(lines) + "\n")
    counts = {s: splits.count(s) for s in ("train", "val", "test")}
    sys.stdout.write(f"{name}: {counts}\n")


def _uuids(repo: Path) -> list[str]:
    table = repo / "datasets" / "coughvid" / "metadata_compiled.csv"
    lines = table.read_text(encoding="utf-8").splitlines()
    return [line.split(",", 1)[0] for line in lines[1:] if line]


def _complete(stem: str, uuids: list[str]) -> str:
    """The uuid a converted file's name stands for (``.ogg`` names lost a char)."""
    if stem in uuids:
        return stem
    hits = [u for u in uuids if u.startswith(stem) and len(u) == len(stem) + 1]
    if len(hits) != 1:
        raise SystemExit(f"{stem}: {len(hits)} uuids complete it")
    return hits[0]


def coughvid(repo: Path, out: Path, label: str, name: str) -> None:
    folder = repo / "feature" / "coughvid_eval"
    files = _load(folder / f"sound_dir_loc_{label}.npy")
    split = _load(folder / f"split_{label}.npy")
    uuids = _uuids(repo)
    ids = [_complete(Path(str(f)).stem, uuids) for f in files]
    _write(
        out,
        name,
        ids,
        [str(s) for s in split],
        f"OPERA feature/coughvid_eval/{{sound_dir_loc,split}}_{label}.npy",
    )


def coswara(repo: Path, out: Path, label: str, name: str) -> None:
    folder = repo / "feature" / "coswara_eval"
    files = _load(folder / f"cough_aligned_filenames_{label}_w_cough-shallow.npy")
    labels = _load(folder / f"cough_aligned_{label}_label_cough-shallow.npy")
    split = [str(s) for s in _load(folder / f"google_{label}_cough_split.npy")]
    ids = [Path(str(f)).parent.name for f in files]  # .../{date}/{participant}/…
    train = [i for i, s in enumerate(split) if s == "train"]
    _, val = train_test_split(
        train,
        test_size=0.2,
        random_state=1337,
        stratify=labels[train],
    )
    for i in val:
        split[i] = "val"
    _write(
        out,
        name,
        ids,
        split,
        f"OPERA feature/coswara_eval/google_{label}_cough_split.npy; val as "
        "linear_evaluation_coswara draws it (20 %, stratified, random_state 1337)",
    )


def main() -> None:
    repo = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent
    coughvid(repo, out, "covid", "coughvid_covid")
    coughvid(repo, out, "gender", "coughvid_sex")
    coswara(repo, out, "smoker", "coswara_smoker")
    coswara(repo, out, "sex", "coswara_sex")


if __name__ == "__main__":
    main()
