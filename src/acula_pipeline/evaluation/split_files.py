"""Split files: a task's own train/val/test, by the source's subject ids.

A split file is a CSV with columns ``id`` (the source's own subject id: a CoughVID
uuid, a Coswara participant folder) and ``split`` (train, val or test), each id
once. ``opera:<name>`` names a split OPERA's benchmark publishes, converted from its
repository and shipped in ``opera_splits/`` (see ``opera_splits/README.md``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

SPLITS = ("train", "val", "test")
OPERA_SPLITS = "opera_splits"


class SplitFileError(ValueError):
    """A split file cannot be read or does not say train/val/test per subject."""


def split_file_path(ref: str) -> Path:
    """The file a ``split_file`` value names: ``opera:<name>`` is a split shipped
    with the package (``evaluation/opera_splits/<name>.csv``), anything else a path."""
    if ref.startswith("opera:"):
        name = ref.removeprefix("opera:")
        folder = resources.files("acula_pipeline.evaluation") / OPERA_SPLITS
        path = Path(str(folder / f"{name}.csv"))
        if not path.is_file():
            shipped = sorted(p.stem for p in Path(str(folder)).glob("*.csv"))
            raise SplitFileError(
                f"split file {ref!r}: no such OPERA split (shipped: {shipped})"
            )
        return path
    return Path(ref)


def read_split_file(ref: str) -> dict[str, str]:
    """``{subject id: split}`` from a split file: a CSV with a header ``id,split``
    (lines starting with ``#`` are comments), a split of train, val or test per
    line, each id once; errors name the file and line. The file is read each time;
    only parsing is cached, keyed by its text, so an edited file is never stale."""
    path = split_file_path(ref)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitFileError(f"split file {path}: cannot be read ({exc})") from exc
    return dict(_parse(str(path), text))


@lru_cache(maxsize=32)
def _parse(path: str, text: str) -> tuple[tuple[str, str], ...]:
    rows = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    header = [c.strip() for c in rows[0][1].split(",")] if rows else []
    if header != ["id", "split"]:
        raise SplitFileError(f"split file {path}: header {header}; expected id,split")
    out: dict[str, str] = {}
    for n, line in rows[1:]:
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2 or not cells[0]:
            raise SplitFileError(
                f"split file {path} line {n}: {line!r} is not id,split"
            )
        sid, split = cells
        if split not in SPLITS:
            raise SplitFileError(
                f"split file {path} line {n}: split {split!r} for {sid!r}; "
                f"expected one of {list(SPLITS)}"
            )
        if out.get(sid, split) != split:
            raise SplitFileError(
                f"split file {path} line {n}: {sid!r} is in {out[sid]} and {split}"
            )
        out[sid] = split
    return tuple(out.items())


def source_id(subject: str, dataset: str) -> str:
    """The source's own id of a subject (``coughvid:<uuid>`` → ``<uuid>``)."""
    prefix = f"{dataset}:"
    return subject[len(prefix) :] if subject.startswith(prefix) else subject
