"""``acula``: use a trained model outside the pipeline.

    acula embed data/06_models/aligned recordings/ -o embeddings.parquet
    acula zero-shot data/06_models/aligned a.wav b.wav -c "No murmur." -c "A murmur."
    acula export data/06_models/aligned -o encoder.onnx
    acula info data/06_models/aligned
    acula package data/06_models/aligned -o dist/acula-aligned
    acula audit-reports reports.csv --dataset circor2022 --root DATA \\
        --key-column patient_id --text-column report

Every command but ``audit-reports`` takes a model folder written by the pipeline
(``config.json`` and ``model.safetensors``). Nothing is downloaded: the text teacher is the one the model
was aligned with, from its package or local path.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from acula_pipeline import __version__

log = logging.getLogger("acula_pipeline")

MODEL = click.argument("model", type=click.Path(path_type=Path), metavar="MODEL_DIR")
FEATURES = click.option(
    "--features",
    type=click.Path(path_type=Path),
    default=None,
    help="Feature store whose meta.json gives the frontend the model was trained with "
    "[default: the model folder's preprocessor_config.json; for folders without one "
    "data/03_primary/features if present, else the pipeline defaults].",
)
DEVICE = click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps"
)
BATCH = click.option(
    "--batch-size",
    default=32,
    show_default=True,
    type=click.IntRange(1),
    help="Clips per batch.",
)
PROGRESS = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar."
)


class CommandError(click.ClickException):
    """One line naming the file and what is wrong; exit status 2, as for a usage
    error (bad input, not a crash)."""

    exit_code = 2


def _fail(message: str) -> None:
    raise CommandError(message)


def _setup_logging(verbose: bool) -> None:
    # A no-op where the root logger is already configured (e.g. under pytest).
    logging.basicConfig(format="%(levelname)s %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO if verbose else logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="acula")
@click.option("-v", "--verbose", is_flag=True, help="Say what is done to each file.")
def main(verbose: bool) -> None:
    """Embed audio, classify it zero-shot, export or describe a trained encoder;
    audit a report corpus."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    _setup_logging(verbose)


def _load(model_dir: Path) -> Any:
    from acula_pipeline.inference import ModelError, load_model

    try:
        return load_model(model_dir)
    except ModelError as exc:
        _fail(str(exc))


def _embed(
    model: Any, inputs: tuple[str, ...], features: Path | None, **kw: Any
) -> Any:
    from acula_pipeline.inference import (
        ModelError,
        audio_inputs,
        embed_files,
        frontend_settings,
    )

    try:
        files = audio_inputs(inputs)
        cfg, policy = frontend_settings(features, model)
    except (FileNotFoundError, ModelError) as exc:
        _fail(str(exc))
    if not files:
        _fail(f"no audio files in {', '.join(inputs)}")
    try:
        result = embed_files(model, files, cfg, policy, **kw)
    except ModelError as exc:
        _fail(str(exc))
    resampled = sum("resampled" in n for n in result.table["notices"])
    if resampled:
        click.echo(
            f"note: {resampled} file(s) resampled to {cfg.sample_rate} Hz "
            "(the model's rate); -v lists them",
            err=True,
        )
    for path, reason in result.failed:
        click.echo(f"skipped {path}: {reason}", err=True)
    if result.table.empty:
        _fail(f"none of the {len(files)} file(s) could be read")
    return result


@main.command()
@MODEL
@click.argument("inputs", nargs=-1, required=True, metavar="AUDIO...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parquet file to write: path, sample_rate, duration_s, n_clips, notices, "
    "embedding (and projection).",
)
@click.option(
    "--projection/--no-projection",
    default=False,
    show_default=True,
    help="Also write the aligned audio head's output (the shared audio-text space).",
)
@FEATURES
@BATCH
@DEVICE
@PROGRESS
def embed(
    model: Path,
    inputs: tuple[str, ...],
    output: Path,
    projection: bool,
    features: Path | None,
    batch_size: int,
    device: str,
    progress: bool,
) -> None:
    """Embed audio files (or every audio file under folders) with MODEL_DIR's encoder.

    Each file is cut into the pipeline's clips (8.19 s windows, 50 % overlap) and its
    embedding is the mean of its clips'. Files at another sample rate are resampled;
    unreadable files are skipped and listed.
    """
    m = _load(model)
    if projection and not m.aligned:
        _fail(f"{model}: --projection needs an aligned model (with projection heads)")
    result = _embed(
        m,
        inputs,
        features,
        batch_size=batch_size,
        device=device,
        progress=progress,
        projection=projection,
    )
    table = result.table.copy()
    for col in ("embedding", "projection"):
        if col in table:
            table[col] = [v.astype("float32").tolist() for v in table[col]]
    from acula_pipeline.runtime import atomic_file

    with atomic_file(output) as tmp:
        table.to_parquet(tmp, index=False)
    click.echo(
        f"wrote {len(table)} embedding(s) of dimension {m.encoder.embed_dim} to {output}"
        + (f"; {len(result.failed)} file(s) skipped" if result.failed else "")
    )


@main.command("zero-shot")
@MODEL
@click.argument("inputs", nargs=-1, required=True, metavar="AUDIO...")
@click.option(
    "-c",
    "--class",
    "classes",
    multiple=True,
    help="A class description (give two or more), e.g. -c 'A heart murmur is heard.'",
)
@click.option(
    "--classes-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A text file with one class description per line.",
)
@click.option(
    "--temperature",
    default=0.1,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Softmax temperature over the cosine similarities.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the table as .csv or .parquet instead of printing it.",
)
@FEATURES
@BATCH
@DEVICE
@PROGRESS
def zero_shot(
    model: Path,
    inputs: tuple[str, ...],
    classes: tuple[str, ...],
    classes_file: Path | None,
    temperature: float,
    output: Path | None,
    features: Path | None,
    batch_size: int,
    device: str,
    progress: bool,
) -> None:
    """Probability of each class description for each audio file.

    Audio and descriptions meet in the aligned model's shared space (audio head on
    the encoder, text head on the frozen teacher); the probabilities are a softmax
    over their cosine similarities. Models aligned with cka_feature do not pair a
    clip with its own text, so expect little from their zero-shot scores. For CKA
    losses the projections are centred over the files given (as in the evaluation),
    so give a representative set of files rather than one.
    """
    import numpy as np
    import pandas as pd

    from acula_pipeline.inference import zero_shot as classify

    texts = list(classes)
    if classes_file is not None:
        texts += [
            ln.strip() for ln in classes_file.read_text().splitlines() if ln.strip()
        ]
    if len(texts) < 2:
        _fail("give at least two class descriptions (-c TEXT ... or --classes-file)")
    m = _load(model)
    if not m.aligned:
        _fail(f"{model}: zero-shot needs an aligned model, e.g. data/06_models/aligned")
    if m.config.get("params", {}).get("loss") == "cka_feature":
        click.echo(
            "note: this model was aligned with cka_feature, which never pairs a clip "
            "with its own text; its zero-shot scores are expected near chance",
            err=True,
        )
    result = _embed(
        m, inputs, features, batch_size=batch_size, device=device, progress=progress
    )
    emb = np.stack(result.table["embedding"].to_list())
    probs = classify(m, emb, texts, temperature)
    table = pd.DataFrame(probs, columns=texts)
    table.insert(0, "path", result.table["path"].to_list())
    table["predicted"] = [texts[i] for i in probs.argmax(axis=1)]
    if output is None:
        with pd.option_context("display.width", 200, "display.max_colwidth", 40):
            click.echo(table.to_string(index=False, float_format="%.3f"))
        return
    from acula_pipeline.runtime import atomic_file, spreadsheet_safe

    with atomic_file(output) as tmp:
        if output.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            spreadsheet_safe(table).to_csv(tmp, index=False)
    click.echo(f"wrote {len(table)} row(s) x {len(texts)} classes to {output}")


@main.command()
@MODEL
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write (encoder.onnx, encoder.pt).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "torchscript"]),
    default=None,
    help="[default: from the output's suffix, .pt/.ts → torchscript, else onnx]",
)
@click.option(
    "--tolerance",
    default=1e-4,
    show_default=True,
    type=float,
    help="Largest allowed absolute difference to PyTorch on the check inputs.",
)
@click.option(
    "--check-audio",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    help="Audio files whose windows are added to the random check inputs.",
)
@click.option(
    "--input",
    "input_kind",
    type=click.Choice(["audio", "logmel"]),
    default="audio",
    show_default=True,
    help="What the exported model reads: raw audio windows (batch, clip_samples) at "
    "the model's rate, with the log-mel frontend inside; or log-mel clips "
    "(batch, frames, n_mels).",
)
@FEATURES
def export(
    model: Path,
    output: Path,
    fmt: str | None,
    tolerance: float,
    check_audio: tuple[Path, ...],
    input_kind: str,
    features: Path | None,
) -> None:
    """Export MODEL_DIR's encoder as one file: raw audio windows → embeddings.

    The input is one window of the model's clip length (131,040 samples at 16 kHz
    by default; a recording's embedding is the mean of its windows', cut as the
    model folder's preprocessor_config.json says); --input logmel exports the
    encoder alone. The exported model is run on check inputs (noise windows, plus
    the windows of --check-audio files) next to PyTorch; the export fails if any
    output differs by more than --tolerance.
    """
    import numpy as np
    import torch

    from acula_pipeline.audio.io import AudioReadError
    from acula_pipeline.inference import (
        ModelError,
        check_inputs,
        export_onnx,
        export_torchscript,
        file_clips,
        file_windows,
        frontend_settings,
        sample_inputs,
    )

    m = _load(model)
    fmt = fmt or ("torchscript" if output.suffix in (".pt", ".ts") else "onnx")
    try:
        cfg, policy = frontend_settings(features, m)
        check_inputs(m, cfg)
        frontend = cfg if input_kind == "audio" else None
        x = sample_inputs(m, frontend=frontend)
        n_random = len(x)
        real = [
            file_windows(p, cfg, policy)[0]
            if frontend is not None
            else file_clips(p, cfg, policy).features
            for p in check_audio
        ]
    except ModelError as exc:
        _fail(str(exc))
    except AudioReadError as exc:
        _fail(f"--check-audio: {exc}")
    if real:
        x = torch.cat([x, torch.from_numpy(np.concatenate(real))])
    export_fn = export_onnx if fmt == "onnx" else export_torchscript
    diff = export_fn(m, output, x, frontend=frontend)
    if not diff <= tolerance:
        output.unlink(missing_ok=True)
        _fail(
            f"{fmt} export differs from PyTorch by {diff:.2e} > {tolerance:.0e} on "
            f"{len(x)} check inputs; nothing written"
        )
    what = (
        f"raw {cfg.sample_rate} Hz audio windows of {cfg.clip_samples} samples"
        if frontend is not None
        else f"log-mel clips of {cfg.n_frames} x {cfg.n_mels}"
    )
    click.echo(
        f"wrote {output} ({fmt}, reads {what}); largest difference to PyTorch on "
        f"{len(x)} inputs ({len(x) - n_random} from audio files): {diff:.2e} "
        f"(tolerance {tolerance:.0e})"
    )


@main.command()
@MODEL
@click.option(
    "--metrics",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Evaluation metrics to show with the model [default: "
    "data/08_reporting/metrics.json when MODEL_DIR is this project's "
    "data/06_models/aligned or baseline_encoder].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(model: Path, metrics: Path | None, as_json: bool) -> None:
    """What MODEL_DIR holds: encoder, teacher, training data hash, metrics."""
    from acula_pipeline.inference import model_summary

    m = _load(model)
    if metrics is None:
        # The last run's metrics describe this project's own models only.
        own = {
            Path("data/06_models", n).resolve() for n in ("aligned", "baseline_encoder")
        }
        default = Path("data/08_reporting/metrics.json")
        metrics = default if model.resolve() in own and default.is_file() else None
    evaluation = None
    if metrics is not None:
        try:
            evaluation = json.loads(metrics.read_text())
        except json.JSONDecodeError as exc:
            _fail(f"{metrics}: not a metrics JSON file ({exc})")
    summary = model_summary(m, evaluation)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        click.echo(f"{key:>20}: {value}")
    if summary.get("synthetic_data"):
        click.echo("note: trained on the SYNTHETIC corpus; its numbers are synthetic")


@main.command()
@MODEL
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write (must not exist): the model folder, its card with results, "
    "and model.onnx.",
)
@click.option(
    "--results",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The evaluate stage's results.json whose numbers go into the card "
    "[default: data/08_reporting/results.json when MODEL_DIR is this project's "
    "data/06_models/aligned or baseline_encoder].",
)
@click.option(
    "--onnx/--no-onnx",
    default=True,
    show_default=True,
    help="Also write model.onnx (raw audio windows in), checked against PyTorch.",
)
def package(model: Path, output: Path, results: Path | None, onnx: bool) -> None:
    """Copy MODEL_DIR into a folder to ship: the Hugging Face model (config,
    weights, preprocessor), a model card README.md that includes the frozen-probe
    results, and a raw-audio ONNX file."""
    import shutil

    from acula_pipeline.hub import CARD_FILE, model_card, pipeline_config

    m = _load(model)
    if output.exists():
        _fail(f"{output}: already exists; give a new folder")
    if results is None:
        own = Path("data/06_models").resolve()
        default = Path("data/08_reporting/results.json")
        if model.resolve().parent == own and default.is_file():
            results = default
    evaluation = None
    if results is not None:
        try:
            evaluation = json.loads(results.read_text())
        except json.JSONDecodeError as exc:
            _fail(f"{results}: not a results JSON file ({exc})")
        if not isinstance(evaluation, dict) or "tasks" not in evaluation:
            _fail(
                f"{results}: no 'tasks' entry; give the evaluate stage's results.json"
            )
    from acula_pipeline.inference import ModelError, export_onnx, frontend_settings
    from acula_pipeline.runtime import atomic_folder

    # The results row of this kind of model (its folder may have any name).
    key = {"pretrain": "baseline", "start": "baseline", "ssl_control": "control"}.get(
        str(m.config.get("kind")), "aligned"
    )
    preprocessor = None
    if (model / "preprocessor_config.json").is_file():  # load_model has read it
        preprocessor = json.loads((model / "preprocessor_config.json").read_text())
    n = sum(int(v.numel()) for v in m.state_dict.values())
    card = model_card(
        pipeline_config(m.config), preprocessor, n, metrics=evaluation, encoder_key=key
    )
    wrote = [CARD_FILE + (f" (results from {results})" if results else " (no results)")]
    with atomic_folder(output) as tmp:  # the whole folder, or nothing on failure
        shutil.copytree(model, tmp, dirs_exist_ok=True)
        (tmp / CARD_FILE).write_text(card)
        if onnx:
            cfg, _ = frontend_settings(None, m)
            try:
                diff = export_onnx(m, tmp / "model.onnx", frontend=cfg)
            except ModelError as exc:
                _fail(f"{exc} (--no-onnx packages it without)")
            if not diff <= 1e-4:
                _fail(
                    f"ONNX export differs from PyTorch by {diff:.2e} > 1e-04; "
                    "nothing written"
                )
            wrote.append(f"model.onnx (largest difference to PyTorch {diff:.1e})")
    click.echo(f"wrote {output}: the model folder, " + ", ".join(wrote))


@main.command()
@click.argument(
    "checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Model folder to write (must not exist).",
)
@click.option(
    "--encoder",
    "family",
    type=click.Choice(["opera_ct", "opera_ce", "opera_gt"]),
    default=None,
    help="Which OPERA model the checkpoint holds [default: told by its keys].",
)
def convert(checkpoint: Path, output: Path, family: str | None) -> None:
    """Convert OPERA's published Lightning CHECKPOINT (encoder-operaCT.ckpt,
    -operaCE, -operaGT) into a model folder (model.safetensors, config.json,
    preprocessor_config.json, README.md) that every command and
    align.encoder.path read. The checkpoint is read as tensors only: nothing in
    it runs, and a file holding other objects is refused."""
    from acula_pipeline.audio.frontend import FrontendCfg
    from acula_pipeline.hub import preprocessor_config, save_model_folder
    from acula_pipeline.models import build_encoder
    from acula_pipeline.models.lightning import UnsafeCheckpoint, lightning_state_dict
    from acula_pipeline.models.opera import LayoutMismatch, OperaEncoder, guess_family
    from acula_pipeline.runtime import file_digest

    if output.exists():
        _fail(f"{output}: already exists; give a new folder")
    try:
        published = lightning_state_dict(checkpoint)  # read once, tensors only
        if family is None:
            family = guess_family(list(published))
            if family is None:
                _fail(
                    f"{checkpoint}: its keys are none of OPERA-CT, -CE or -GT's; "
                    "give --encoder if it is one of them"
                )
        encoder = build_encoder({"name": family})
        assert isinstance(encoder, OperaEncoder)  # the three choices are OPERA's
        encoder.load_published(published, str(checkpoint))
    except (UnsafeCheckpoint, LayoutMismatch, FileNotFoundError) as exc:
        _fail(str(exc))
    artifact = {
        "state_dict": {
            k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()
        },
        "config": {
            "kind": "converted",
            "encoder": encoder.spec(),
            "encoder_source": {
                "file": checkpoint.name,
                "sha256": file_digest(checkpoint),
            },
        },
        # OPERA's frontend is the pipeline's default one.
        "preprocessor": preprocessor_config(
            {"frontend": FrontendCfg().to_dict(), "pad_mode": "repeat"}
        ),
    }
    save_model_folder(output, artifact)
    loaded = getattr(encoder, "loaded", {})
    click.echo(
        f"wrote {output}: {family}, {loaded.get('tensors', '?')} tensors "
        f"({loaded.get('unused', 0)} unused published tensors left out)"
    )


@main.command("audit-reports")
@click.argument("corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dataset",
    required=True,
    help="Source adapter of the dataset the reports describe (circor2022, icbhi2017 …).",
)
@click.option(
    "--root",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The dataset's root folder, as for ingest.",
)
@click.option(
    "--key-column",
    required=True,
    help="Column naming each report's recording or subject (50782_AV, 50782, "
    "circor2022:50782 …).",
)
@click.option("--text-column", required=True, help="Column holding the report text.")
@click.option(
    "--fields",
    default=None,
    help="Comma-separated facts the reports were written from (reports.fields); "
    "[default: every fact of the dataset].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report_audit"),
    show_default=True,
    help="Folder for flags.csv, audit.json and audit.html.",
)
def audit_reports_command(
    corpus: Path,
    dataset: str,
    root: Path,
    key_column: str,
    text_column: str,
    fields: str | None,
    output: Path,
) -> None:
    """Check an existing report corpus (CSV, TSV, Parquet or JSON lines) against
    the dataset's metadata with the reports stage's checks; write every flag with
    its reason and the sentence that triggered it, and the counts per reason."""
    from acula_pipeline.reports.audit import (
        AuditError,
        audit_reports,
        read_corpus,
        write_audit,
    )
    from acula_pipeline.sources import SourceError

    try:
        table = read_corpus(corpus, key_column, text_column)
        allow = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
        audit = audit_reports(table, dataset, root, allow)
    except (AuditError, SourceError) as exc:
        _fail(str(exc))
    paths = write_audit(audit, output)
    c = audit.counts
    click.echo(
        f"{c['reports']} reports ({c['matched']} matched to {dataset}, "
        f"{c['unmatched']} unmatched): {c['flagged']} flagged, {c['flags']} flags"
    )
    for check, n in c["flags_by_check"].items():
        click.echo(f"  {check:>18}: {n}")
    click.echo(f"wrote {paths['flags']}, {paths['counts']}, {paths['html']}")


if __name__ == "__main__":  # pragma: no cover
    main()
