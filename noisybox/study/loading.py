"""Loading a study config: from a shipped preset, a YAML file or a dict, validated once.

The YAML's fields and the dataclasses they become are described in
:mod:`noisybox.study.spec` (re-exported here); their validation is
:func:`noisybox.study.schema.validate_config` (pydantic models). Formerly
``noisybox.study.config``, which still re-exports these names.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from noisybox.study.name_checks import Registries
from noisybox.study.schema import validate_config
from noisybox.study.spec import (
    BUILTIN_DATASETS,
    MODES,
    NO_BOX_NOISE,
    RESERVED_OPTIONS,
    RUNTIME_KEYS,
    ULTRALYTICS_BACKBONE,
    BenchmarkConfig,
    CollapseConfig,
    ConfigError,
    DatasetConfig,
    DetectorSpec,
    LossSpec,
    NoiseConfig,
    ReportConfig,
    config_diff,
    is_ultralytics_detector,
    loss_label,
    parse_label,
)

__all__ = [
    "BUILTIN_DATASETS",
    "BenchmarkConfig",
    "CollapseConfig",
    "ConfigError",
    "DatasetConfig",
    "DetectorSpec",
    "LossSpec",
    "MODES",
    "NO_BOX_NOISE",
    "NoiseConfig",
    "RESERVED_OPTIONS",
    "RUNTIME_KEYS",
    "ReportConfig",
    "ULTRALYTICS_BACKBONE",
    "config_diff",
    "is_ultralytics_detector",
    "list_presets",
    "load_config",
    "loss_label",
    "parse_label",
    "preset_path",
]


def list_presets() -> list[str]:
    """Names of the presets shipped in ``noisybox/study/presets/``.

    >>> "quick" in list_presets()
    True
    """
    folder = resources.files("noisybox.study") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_path(name: str) -> Path:
    """The YAML file of a shipped preset.

    Raises:
        ConfigError: ``name`` is not a shipped preset (the message lists them).
    """
    if name not in list_presets():
        raise ConfigError(
            [f"preset: Expected one of {', '.join(list_presets())} but got {name!r}"], "<preset>"
        )
    return Path(str(resources.files("noisybox.study") / "presets" / f"{name}.yaml"))


# --------------------------------------------------------------------------- loading


def load_config(
    source: str | os.PathLike[str] | dict[str, Any],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    check_paths: bool = True,
    registries: Registries | None = None,
) -> BenchmarkConfig:
    """Load and validate a benchmark config from a preset name, a YAML file or a dict.

    Args:
        source: a preset name (``"quick"``), a path to a YAML file, or already-parsed data.
        base_dir: folder relative dataset paths are resolved against. Defaults to the YAML
            file's folder, and to the current folder for presets and dicts.
        check_paths: check that dataset paths exist (turned off to inspect a config).
        registries: what names and the schedule are checked against (default: the
            installed registries and ``TrainConfig``, which import torch; see
            :mod:`noisybox.study.name_checks`).

    Returns:
        The validated ``BenchmarkConfig``.

    Raises:
        ConfigError: listing every problem found, each naming its key.
    """
    name_default = "benchmark"
    if isinstance(source, dict):
        raw: Any = source
        label = "<dict>"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        text = str(source)
        is_preset = (
            not text.endswith((".yaml", ".yml", ".json"))
            and os.sep not in text
            and not Path(text).exists()
        )
        path = preset_path(text) if is_preset else Path(text)
        label = str(path)
        name_default = path.stem
        if not path.is_file():
            raise ConfigError([f"config: Expected an existing YAML file but got {text!r}"], text)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(
                [f"config: Expected valid YAML{where} but got: {exc}"], label
            ) from None
        if base_dir is not None:
            base = Path(base_dir)
        else:
            base = Path.cwd() if is_preset else path.resolve().parent
    return validate_config(
        raw,
        source=label,
        base_dir=base,
        check_paths=check_paths,
        default_name=name_default,
        registries=registries,
    )
