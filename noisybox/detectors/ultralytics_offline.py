"""Keep Ultralytics off the network: its environment, settings and plot fonts.

Imports Ultralytics only inside :func:`configure_offline`, after setting its environment:
it must run before the first ``import ultralytics`` (Ultralytics checks for a network
connection at import unless ``YOLO_OFFLINE`` is set).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from filelock import FileLock
from PIL import Image

from noisybox._fileio import atomic_write_bytes, make_dirs

__all__ = ["OFFLINE_ENV", "OFFLINE_SETTINGS", "configure_offline"]

#: Environment Ultralytics reads at import: no online check (``is_online`` resolves two DNS
#: names otherwise), no ``pip install`` of missing requirements.
OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false"}

#: Settings written into the config folder of :func:`configure_offline`: no usage analytics
#: (``sync``), no hub/platform key, no experiment-tracker integrations.
OFFLINE_SETTINGS: dict[str, Any] = {
    "sync": False,
    "api_key": "",
    "clearml": False,
    "comet": False,
    "dvc": False,
    "hub": False,
    "mlflow": False,
    "neptune": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
    "openvino_msg": False,
}

#: Fonts Ultralytics' ``check_font`` downloads when missing (``check_det_dataset`` calls
#: it even with ``plots=False``); the config folder gets matplotlib's DejaVu Sans under
#: these names, so the check finds a local file.
_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")
#: The sub-folder of ``YOLO_CONFIG_DIR`` Ultralytics keeps its settings in.
_SUB_DIR = "Ultralytics"


@contextlib.contextmanager
def _keep_global_state() -> Iterator[None]:
    """Undo what importing Ultralytics changes in other libraries for the whole process.

    Ultralytics' import replaces ``PIL.Image.open`` with a wrapper that, on a file PIL
    cannot identify, pip-installs pi-heif (or raises ``ModuleNotFoundError`` when it may
    not), sets numpy's and torch's print options (numpy floats as ``{:11.5g}``) and
    OpenCV's thread count to 0. noisybox keeps PIL's own function (unreadable images still
    raise PIL's ``UnidentifiedImageError``; HEIC files stay unreadable), the print options
    and the thread count it found.
    """
    pil_open, np_options, cv2_threads = Image.open, np.get_printoptions(), cv2.getNumThreads()
    try:
        yield
    finally:
        Image.open = pil_open
        np.set_printoptions(**np_options)
        torch.set_printoptions(profile="default")
        cv2.setNumThreads(cv2_threads)


@contextlib.contextmanager
def _logging_below_warning_off() -> Iterator[None]:
    """No log record below WARNING from any logger (Ultralytics sets its own level at import)."""
    before = logging.root.manager.disable
    logging.disable(max(before, logging.INFO))
    try:
        yield
    finally:
        logging.disable(before)


def configure_offline(config_dir: str | os.PathLike[str], *, quiet: bool = False) -> Path:
    """Point Ultralytics at a config folder of its own and keep it off the network.

    Sets :data:`OFFLINE_ENV` and ``YOLO_CONFIG_DIR=config_dir``, then imports Ultralytics,
    turns off :data:`OFFLINE_SETTINGS` (analytics ``sync``, hub and tracker integrations)
    in that folder's ``settings.json`` and puts the two plot fonts there (copies of
    matplotlib's DejaVu Sans), so that no font is downloaded. The user's own Ultralytics
    settings file is not touched. What Ultralytics' import changes in other libraries
    (``PIL.Image.open``, numpy's and torch's print options, OpenCV's thread count) is
    undone.

    Processes that share ``config_dir`` (the workers of ``run-benchmark --jobs N``) take
    turns through a lock file in it (``filelock``, a dependency of torch): otherwise one
    reads the settings file while another writes it, warns that it cannot decode it and
    writes Ultralytics' defaults over it.

    Ultralytics reads the environment when it is first imported. Called after that, the
    environment is still set (for child processes) and Ultralytics' current config folder
    is returned; a warning says so if that folder is not offline already (the process
    may still reach the network).

    Args:
        config_dir: the folder (created); Ultralytics uses its ``Ultralytics`` sub-folder.
        quiet: no info lines from the import (Ultralytics' "Creating new Ultralytics
            Settings" on a fresh folder); warnings still show.

    Returns:
        The config folder Ultralytics uses.
    """
    root = Path(config_dir).resolve()
    make_dirs(root)
    with FileLock(root / "configure_offline.lock"):
        return _configure(root, config_dir, quiet)


def _configure(root: Path, config_dir: str | os.PathLike[str], quiet: bool) -> Path:
    """:func:`configure_offline` once it holds the folder's lock."""
    late = "ultralytics.utils" in sys.modules
    os.environ.update({**OFFLINE_ENV, "YOLO_CONFIG_DIR": str(root)})
    if late:
        from ultralytics.utils import ONLINE, SETTINGS, USER_CONFIG_DIR
    else:
        with (
            _keep_global_state(),
            _logging_below_warning_off() if quiet else contextlib.nullcontext(),
        ):
            from ultralytics.utils import ONLINE, SETTINGS, USER_CONFIG_DIR

    folder = Path(USER_CONFIG_DIR).resolve()
    if late and folder != root / _SUB_DIR:
        fonts = all((folder / name).is_file() for name in _FONTS)
        if ONLINE or SETTINGS.get("sync") or not fonts:
            warnings.warn(
                f"Ultralytics was imported before configure_offline({str(config_dir)!r}); "
                f"it keeps its settings in {folder} and may reach the network in this process",
                stacklevel=3,
            )
        return folder
    SETTINGS.update({k: v for k, v in OFFLINE_SETTINGS.items() if k in SETTINGS})
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in _FONTS:
        if not (folder / name).is_file():
            atomic_write_bytes(folder / name, font.read_bytes())
    return folder
