"""``noisybox plot-loss`` and ``noisybox list-losses``: thin commands over noisybox.losses."""

from __future__ import annotations

import json
from pathlib import Path

import click

from noisybox._fileio import check_outputs, save_figure
from noisybox.errors import NoisyboxError

__all__ = ["list_losses_cmd", "plot_loss"]


@click.command("plot-loss")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Image file to write (format from the suffix: .png, .pdf, .svg).",
)
@click.option(
    "--alpha",
    "alphas",
    type=click.FloatRange(min=0),
    multiple=True,
    help="A power to draw (repeatable; 0 draws -log(IoU)). Default: 0.5 1 2 3.",
)
@click.option("--box-cox", is_flag=True, help="Draw (1 - IoU^alpha) / alpha (eq. 1).")
@click.option("--dpi", type=click.IntRange(min=10), default=150, show_default=True)
def plot_loss(output: Path, alphas: tuple[float, ...], box_cox: bool, dpi: int) -> None:
    """Draw the Alpha-IoU paper's Figure 1: loss and |gradient| against IoU."""
    from noisybox.losses.plot import DEFAULT_ALPHAS, plot_alpha_iou_curves

    fmt = output.suffix.lstrip(".").lower()
    if not fmt:
        raise click.BadParameter(
            f"Expected a file suffix such as .png but got {str(output)!r}", param_hint="'-o'"
        )
    if not output.parent.is_dir():
        raise click.BadParameter(
            f"Expected an existing folder but got {str(output.parent)!r}", param_hint="'-o'"
        )
    try:
        check_outputs({"-o": output}, {})
        fig = plot_alpha_iou_curves(alphas or DEFAULT_ALPHAS, box_cox=box_cox)
        save_figure(fig, output, format=fmt, dpi=dpi)
    except (NoisyboxError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(output))


@click.command("list-losses")
@click.option("--json", "as_json", is_flag=True, help="Print name -> settings as JSON.")
def list_losses_cmd(as_json: bool) -> None:
    """List the box-regression losses registered by name."""
    from noisybox.losses import get_loss, list_losses

    names = list_losses()
    if not as_json:
        for name in names:
            click.echo(name)
        return
    table = {}
    for name in names:
        module = get_loss(name)
        table[name] = {
            key: getattr(module, key)
            for key in ("variant", "alpha", "alpha_penalty", "box_cox")
            if hasattr(module, key)
        }
    click.echo(json.dumps(table, indent=2))
