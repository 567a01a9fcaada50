"""Kedro project settings (defaults except for the config loader)."""

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import DictConfig, OmegaConf

# DVC's default parameters file, at the project root: it holds the `align` settings,
# so that `dvc exp run -S align.loss=clip` reaches them. Kedro reads it as part of
# conf/base (a key defined there too is a duplicate, refused as between any two
# files of one environment); environments and --params override it as usual.
ROOT_PARAMS = "params.yaml"


class ProjectConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader, plus the project root's ``params.yaml`` among the
    base environment's parameter files."""

    def _read_raw_config(self, key: str) -> Any:
        base, env, base_path, env_path, processed = super()._read_raw_config(key)
        root = Path(self.conf_source).parent / ROOT_PARAMS
        if key == "parameters" and self._protocol == "file" and root.is_file():
            loaded = OmegaConf.load(root)
            if not isinstance(loaded, DictConfig):
                raise ValueError(f"{root}: expected a mapping of settings (align: …)")
            for path, cfg in base.items():
                both = sorted(set(cfg) & set(loaded))
                if both:
                    raise ValueError(
                        f"Duplicate keys found in {root} and {path}: {', '.join(both)} "
                        f"({ROOT_PARAMS} holds them; remove them from {path})"
                    )
            base = {**base, root: loaded}
            processed.add(root)
        return base, env, base_path, env_path, processed


CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/local, conf/circor_dev, kedro run --env=...) overrides
    # parameters key by key: `ingest: {sources: {circor2022: ...}}` there changes
    # that source and keeps the rest of conf/base's `ingest` (the default,
    # "destructive", would replace the whole top-level block).
    "merge_strategy": {"parameters": "soft"},
}

from acula_pipeline.hooks import DistributedHooks, InputChecks  # noqa: E402

HOOKS = (InputChecks(), DistributedHooks())
