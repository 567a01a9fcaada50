"""Kedro project settings (defaults except for the config loader)."""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}

from acula_pipeline.hooks import DistributedHooks  # noqa: E402

HOOKS = (DistributedHooks(),)
