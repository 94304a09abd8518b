"""The ``noisybox`` command line: a click group of thin commands over the library.

Sub-commands live in their own modules and are imported only when invoked, so that
``noisybox --help`` and ``noisybox corrupt`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from noisybox import __version__

__all__ = ["main"]

# command name -> "module:attribute"; modules are imported lazily.
_COMMANDS: dict[str, str] = {
    "corrupt": "noisybox.cli.noise:corrupt",
    "iou-hist": "noisybox.cli.viz:iou_hist",
    "iou": "noisybox.cli.noise:iou",
    "noise-sweep": "noisybox.cli.sweep:noise_sweep",
    "plot-loss": "noisybox.cli.losses:plot_loss",
    "list-losses": "noisybox.cli.losses:list_losses_cmd",
    "make-dataset": "noisybox.cli.data:make_dataset",
    "train": "noisybox.cli.engine:train",
    "evaluate": "noisybox.cli.engine:evaluate",
    "run-benchmark": "noisybox.cli.benchmark:run_benchmark",
    "report": "noisybox.cli.benchmark:report",
    "calibrate": "noisybox.cli.calibration:calibrate",
    "protocol": "noisybox.cli.calibration:protocol",
    "status": "noisybox.cli.benchmark:status",
    "list-presets": "noisybox.cli.benchmark:list_presets",
    "preview": "noisybox.cli.viz:preview",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented lazy pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _COMMANDS if self._module_exists(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command: Any = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None

    @staticmethod
    def _module_exists(cmd_name: str) -> bool:
        module_name = _COMMANDS[cmd_name].split(":")[0]
        return importlib.util.find_spec(module_name) is not None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="noisybox")
def main() -> None:
    """Measure how robust detectors and box losses are to noisy box annotations."""
