"""Kedro project settings (defaults except for the config loader)."""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
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
