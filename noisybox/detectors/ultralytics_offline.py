"""Keep Ultralytics off the network: its environment, settings and plot fonts.

Imports Ultralytics only inside :func:`configure_offline`, after setting its environment:
it must run before the first ``import ultralytics`` (Ultralytics checks for a network
connection at import unless ``YOLO_OFFLINE`` is set).
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

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


def configure_offline(config_dir: str | os.PathLike[str]) -> Path:
    """Point Ultralytics at a config folder of its own and keep it off the network.

    Sets :data:`OFFLINE_ENV` and ``YOLO_CONFIG_DIR=config_dir``, then imports Ultralytics,
    turns off :data:`OFFLINE_SETTINGS` (analytics ``sync``, hub and tracker integrations)
    in that folder's ``settings.json`` and puts the two plot fonts there (copies of
    matplotlib's DejaVu Sans), so that no font is downloaded. The user's own Ultralytics
    settings file is not touched. ``PIL.Image.open`` stays PIL's own (Ultralytics' import
    wraps it to install a HEIF plugin on the first unreadable file).

    Ultralytics reads the environment when it is first imported. Called after that, the
    environment is still set (for child processes) and Ultralytics' current config folder
    is returned; a warning says so if that folder is not offline already (the process
    may still reach the network).

    Args:
        config_dir: the folder (created); Ultralytics uses its ``Ultralytics`` sub-folder.

    Returns:
        The config folder Ultralytics uses.
    """
    root = Path(config_dir).resolve()
    late = "ultralytics.utils" in sys.modules
    os.environ.update({**OFFLINE_ENV, "YOLO_CONFIG_DIR": str(root)})
    from PIL import Image

    pil_open = Image.open
    from ultralytics.utils import ONLINE, SETTINGS, USER_CONFIG_DIR

    if not late:
        # Ultralytics replaces PIL.Image.open at import with a wrapper that, on a file PIL
        # cannot identify, pip-installs pi-heif (or raises ModuleNotFoundError when it may
        # not): PIL keeps its own function, so nothing is installed and unreadable images
        # still raise PIL's UnidentifiedImageError (HEIC files stay unreadable).
        Image.open = pil_open

    folder = Path(USER_CONFIG_DIR).resolve()
    if late and folder != root / _SUB_DIR:
        fonts = all((folder / name).is_file() for name in _FONTS)
        if ONLINE or SETTINGS.get("sync") or not fonts:
            warnings.warn(
                f"Ultralytics was imported before configure_offline({str(config_dir)!r}); "
                f"it keeps its settings in {folder} and may reach the network in this process",
                stacklevel=2,
            )
        return folder
    SETTINGS.update({k: v for k, v in OFFLINE_SETTINGS.items() if k in SETTINGS})
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in _FONTS:
        if not (folder / name).is_file():
            shutil.copyfile(font, folder / name)
    return folder
