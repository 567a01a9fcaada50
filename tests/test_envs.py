"""Kedro environments and their DVC form: conf/circor_dev merges over conf/base key
by key, writes under its own data root, and envs/circor_dev/dvc.yaml is what
``acula_pipeline.dvc_env`` makes of dvc.yaml for it."""

from __future__ import annotations

import shutil

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from acula_pipeline.dvc_env import EnvError, env_pipeline, main
from acula_pipeline.settings import CONFIG_LOADER_ARGS, ProjectConfigLoader

from .conftest import REPO


def loader(env: str, root=REPO, **kw) -> OmegaConfigLoader:
    return ProjectConfigLoader(
        str(root / "conf"),
        base_env="base",
        default_run_env=env,
        merge_strategy=CONFIG_LOADER_ARGS["merge_strategy"],
        **kw,
    )


def test_circor_dev_merges_over_base_and_has_its_own_data_root():
    params = loader("circor_dev")["parameters"]
    sources = params["ingest"]["sources"]
    assert sources["circor2022"] == {
        "enabled": True,
        "root": "../shared/real_dev/circor2022",
    }
    assert sources["synthetic"]["enabled"] is False
    # the rest of conf/base's ingest block is kept (a soft, key-by-key merge)
    base = loader("local")["parameters"]
    assert params["ingest"]["features"] == base["ingest"]["features"]
    assert (
        sources["synthetic"]["generate"]
        == base["ingest"]["sources"]["synthetic"]["generate"]
    )
    assert params["evaluate"]["score_on"] == "val"
    assert params["evaluate"]["tasks"] == base["evaluate"]["tasks"]
    catalog = loader("circor_dev")["catalog"]
    paths = [
        e.get("path") or e.get("filepath")
        for e in catalog.values()
        if isinstance(e, dict) and (e.get("path") or e.get("filepath"))
    ]
    assert paths and all(p.startswith("data/circor_dev/") for p in paths), paths
    assert loader("local")["catalog"]["recordings"]["filepath"] == (
        "data/02_intermediate/recordings.parquet"
    )


def test_env_dvc_file_is_generated_and_in_sync():
    assert main(["circor_dev", "--check", "--repo", str(REPO)]) == 0
    text = (REPO / "envs/circor_dev/dvc.yaml").read_text()
    committed = yaml.safe_load(text)
    assert committed == env_pipeline("circor_dev", REPO)
    stages = committed["stages"]
    # no synthetic corpus in this environment; every other stage of dvc.yaml
    base = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(stages) == [s for s in base if s != "corpus"]
    for name, stage in stages.items():
        assert stage["cmd"] == f"kedro run --env=circor_dev --pipelines={name}"
        assert stage["wdir"] == "../.."
        outs = [o if isinstance(o, str) else next(iter(o)) for o in stage["outs"]]
        assert all(o.startswith("data/circor_dev/") for o in outs), outs
        assert not any(d.startswith("data/01_raw") for d in stage["deps"])
    assert "../shared/real_dev/circor2022" in stages["ingest"]["deps"]
    assert {"conf/circor_dev/parameters_ingest.yml": None} in stages["ingest"]["params"]
    assert {"conf/circor_dev/parameters_evaluate.yml": None} in stages["evaluate"][
        "params"
    ]


def test_env_without_its_own_data_root_is_refused(tmp_path):
    shutil.copytree(REPO / "conf" / "base", tmp_path / "conf" / "base")
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "conf" / "mine").mkdir()
    with pytest.raises(EnvError, match="data_root"):
        env_pipeline("mine", tmp_path)
    (tmp_path / "conf" / "mine" / "globals.yml").write_text("data_root: data\n")
    with pytest.raises(EnvError, match="never overlap"):
        env_pipeline("mine", tmp_path)
    with pytest.raises(EnvError, match="no Kedro environment conf/other"):
        env_pipeline("other", tmp_path)
    (tmp_path / "conf" / "mine" / "globals.yml").write_text("data_root: data/mine\n")
    # the synthetic source stays on: the corpus stage stays, under the new root
    stages = env_pipeline("mine", tmp_path)["stages"]
    assert stages["corpus"]["outs"] == ["data/mine/01_raw/synthetic"]
    assert main(["mine", "--repo", str(tmp_path)]) == 0
    assert (tmp_path / "envs/mine/dvc.yaml").read_text().startswith("# Generated")


def test_the_align_settings_come_from_params_yaml_under_env_and_runtime_overrides(
    tmp_path,
):
    """Issue 21 #1: `dvc exp run -S align.loss=clip` edits DVC's default file,
    params.yaml, at the root; Kedro reads it with conf/base, below environments and
    --params; a key in both params.yaml and conf/base is refused."""
    root = tmp_path / "p"
    shutil.copytree(REPO / "conf" / "base", root / "conf" / "base")
    (root / "conf" / "local").mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    repo_align = yaml.safe_load((REPO / "params.yaml").read_text())["align"]
    assert loader("local", root)["parameters"]["align"] == repo_align
    assert loader("circor_dev")["parameters"]["align"] == repo_align
    text = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(
        text.replace("loss: cka_feature", "loss: clip", 1)
    )
    assert loader("local", root)["parameters"]["align"]["loss"] == "clip"
    (root / "conf/local/parameters_align.yml").write_text("align:\n  loss: siglip\n")
    params = loader("local", root)["parameters"]["align"]
    assert params["loss"] == "siglip" and params["head"] == repo_align["head"]
    runtime = loader("local", root, runtime_params={"align": {"loss": "cka_linear"}})
    assert runtime["parameters"]["align"]["loss"] == "cka_linear"
    (root / "conf/base/parameters_more.yml").write_text("align:\n  loss: clip\n")
    with pytest.raises(ValueError, match="Duplicate keys"):
        loader("local", root)["parameters"]
