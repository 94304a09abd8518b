"""``noisybox plot-loss`` and ``noisybox list-losses``: thin commands over noisybox.losses."""

from __future__ import annotations

from pathlib import Path

import click

from noisybox._fileio import check_outputs, save_figure
from noisybox._limits import MAX_DPI
from noisybox.cli._options import (
    ALPHA,
    USER_ERRORS,
    BoundedIntRange,
    common_options,
    echo_json,
    run_command,
)

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
    type=ALPHA,
    multiple=True,
    help="A power to draw (repeatable; 0 draws -log(IoU)). Default: 0.5 1 2 3.",
)
@click.option("--box-cox", is_flag=True, help="Draw (1 - IoU^alpha) / alpha (eq. 1).")
@click.option(
    "--loss",
    "loss_names",
    multiple=True,
    help="A registered loss to draw instead (repeatable; see list-losses), along a 32 px "
    "square shifted against itself; with --alpha, once per alpha.",
)
@click.option("--dpi", type=BoundedIntRange(10, MAX_DPI), default=150, show_default=True)
@common_options
def plot_loss(
    output: Path,
    alphas: tuple[float, ...],
    box_cox: bool,
    loss_names: tuple[str, ...],
    dpi: int,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Draw the Alpha-IoU paper's Figure 1: loss and |gradient| against IoU."""
    from noisybox.losses import list_losses
    from noisybox.losses.plot import DEFAULT_ALPHAS, plot_alpha_iou_curves, plot_loss_curves

    for name in loss_names:
        if name not in list_losses():
            raise click.BadParameter(
                f"Expected a loss in {', '.join(list_losses())} but got {name!r}",
                param_hint="'--loss'",
            )
    if loss_names and box_cox:
        raise click.BadParameter(
            "Expected --box-cox without --loss (it is a form of the alpha-IoU term only)",
            param_hint="'--box-cox'",
        )
    fmt = output.suffix.lstrip(".").lower()
    if not fmt:
        raise click.BadParameter(
            f"Expected a file suffix such as .png but got {str(output)!r}", param_hint="'-o'"
        )
    if not output.parent.is_dir():
        raise click.BadParameter(
            f"Expected an existing folder but got {str(output.parent)!r}", param_hint="'-o'"
        )

    def run() -> None:
        check_outputs({"-o": output}, {})
        if loss_names:
            fig = plot_loss_curves(loss_names, alphas or None)
        else:
            fig = plot_alpha_iou_curves(alphas or DEFAULT_ALPHAS, box_cox=box_cox)
        save_figure(fig, output, format=fmt, dpi=dpi)

    # matplotlib reports an unknown file format as ValueError
    run_command(debug, run, (*USER_ERRORS, ValueError))
    if as_json:
        echo_json(
            {
                "output": str(output),
                "alphas": list(alphas or ([] if loss_names else DEFAULT_ALPHAS)),
                "losses": list(loss_names),
                "box_cox": box_cox,
            }
        )
        return
    click.echo(str(output))


@click.command("list-losses")
@common_options
def list_losses_cmd(as_json: bool, quiet: bool, debug: bool) -> None:
    """List the registered box losses: name, family, parameters (defaults) and reference.

    One tab-separated line per loss; --json gives
    {name: {"family", "parameters", "reference"}}.
    """
    from noisybox.losses import describe_loss, list_losses

    table = run_command(debug, lambda: {name: describe_loss(name) for name in list_losses()})
    if as_json:
        echo_json(table)
        return
    for name, info in table.items():
        params = " ".join(f"{k}={v}" for k, v in info["parameters"].items())
        click.echo(f"{name}\t{info['family']}\t{params}\t{info['reference']}")
