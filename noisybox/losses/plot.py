"""Figure 1 of the Alpha-IoU paper: ``1 - IoU^alpha`` and ``|dL/dIoU|`` against IoU, for the
alpha-IoU term and for any registered loss.

matplotlib is imported inside the functions so that importing :mod:`noisybox.losses`
does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from noisybox.losses.alpha_iou import alpha_iou_term
from noisybox.losses.registry import get_loss

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["loss_curve", "plot_alpha_iou_curves", "plot_loss_curves"]

DEFAULT_ALPHAS = (0.5, 1.0, 2.0, 3.0)


def loss_and_gradient(
    alpha: float, num_points: int = 200, *, box_cox: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IoU grid ``Tensor[P]`` on ``(0, 1]``, the loss and ``|dL/dIoU|`` by autograd.

    >>> iou, loss, grad = loss_and_gradient(2.0, 3)
    >>> iou.tolist(), loss.tolist(), grad.tolist()
    ([0.0, 0.5, 1.0], [1.0, 0.75, 0.0], [0.0, 1.0, 2.0])
    """
    iou = torch.linspace(0.0, 1.0, num_points, dtype=torch.float64, requires_grad=True)
    loss = alpha_iou_term(iou, alpha, box_cox=box_cox)
    (grad,) = torch.autograd.grad(loss.sum(), iou)
    return iou.detach(), loss.detach(), grad.abs()


def plot_alpha_iou_curves(
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    *,
    num_points: int = 400,
    box_cox: bool = False,
    grad_ylim: float = 4.0,
) -> Figure:
    """Draw the paper's Figure 1: loss (left) and absolute gradient (right) against IoU.

    Args:
        alphas: powers to draw; ``1`` is the IoU loss, ``0`` draws ``-log(IoU)``.
        num_points: IoU samples on ``[0, 1]``.
        box_cox: draw the Box-Cox form ``(1 - IoU^alpha) / alpha`` (eq. 1).
        grad_ylim: upper y limit of the gradient panel (it diverges at 0 for alpha < 1).

    Returns:
        A matplotlib ``Figure`` (Agg backend, not shown); save it with ``fig.savefig``.

    Raises:
        ValueError: no alphas, or an alpha below 0.

    Reference: He et al., Alpha-IoU, NeurIPS 2021, Figure 1 and Property 3.
    """
    if len(alphas) == 0:
        raise ValueError("Expected at least one alpha but got none")
    for a in alphas:
        if not a >= 0:
            raise ValueError(f"Expected every alpha >= 0 but got {a!r}")
    from matplotlib.figure import Figure  # noqa: PLC0415  (lazy: keep import light)

    # a bare Figure draws with the Agg canvas and never touches pyplot's global state
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    for a in alphas:
        iou, loss, grad = loss_and_gradient(float(a), num_points, box_cox=box_cox)
        label = "-log(IoU)" if a == 0 else f"alpha = {a:g}"
        style = {"linestyle": "--", "color": "black"} if a == 1 else {}
        ax_loss.plot(iou.numpy(), loss.numpy(), label=label, **style)
        ax_grad.plot(iou.numpy(), grad.numpy(), label=label, **style)
    name = "(1 - IoU^alpha) / alpha" if box_cox else "1 - IoU^alpha"
    ax_loss.set(xlabel="IoU", ylabel=f"loss  {name}", xlim=(0, 1), ylim=(0, None))
    ax_grad.set(xlabel="IoU", ylabel="|d loss / d IoU|", xlim=(0, 1), ylim=(0, grad_ylim))
    ax_loss.set_title("alpha-IoU loss")
    ax_grad.set_title("absolute gradient")
    ax_loss.legend()
    ax_grad.grid(alpha=0.3)
    ax_loss.grid(alpha=0.3)
    return fig


def loss_curve(
    name: str, alpha: float | None = None, num_points: int = 200, *, side: float = 32.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A registered loss along a path of box pairs indexed by their IoU, and ``|dL/dIoU|``.

    The target is the square ``[0, 0, side, side]``; the prediction is the same square
    shifted along x by ``side (1 - IoU) / (1 + IoU)``, which gives the IoU exactly (from the
    touching squares at IoU 0 to identical ones at 1). Every other quantity a loss uses
    (centre and corner distances, the enclosing box) then moves with the IoU as well, so
    the curve is the loss on that path, not a function of the IoU alone. The loss keeps its
    registered defaults (``alpha`` overrides the power) and runs in eval mode (Wise-IoU v3
    at its initial running mean, 1).

    Returns:
        IoU grid ``Tensor[P]`` on ``[0, 1]``, the loss and ``|dL/dIoU|`` (float64).

    Raises:
        ValueError: unknown loss name or bad alpha.

    >>> iou, loss, grad = loss_curve("iou", alpha=2.0, num_points=3)
    >>> [round(v, 6) for v in loss.tolist()], [round(v, 6) for v in grad.tolist()]
    ([1.0, 0.75, 0.0], [0.0, 1.0, 2.0])
    """
    module = get_loss(name, alpha=alpha).eval()
    iou = torch.linspace(0.0, 1.0, num_points, dtype=torch.float64, requires_grad=True)
    # + 1e-9 side: at IoU 1 the edges would coincide and autograd would take the mean of the
    # one-sided slopes of min/max (0); the offset moves the IoU by about 1e-9
    shift = side * (1 - iou) / (1 + iou) + side * 1e-9
    zeros = torch.zeros_like(shift)
    pred = torch.stack([shift, zeros, shift + side, zeros + side], dim=-1)
    target = torch.tensor([[0.0, 0.0, side, side]], dtype=torch.float64).expand_as(pred)
    loss = module(pred, target)
    (grad,) = torch.autograd.grad(loss.sum(), iou)
    return iou.detach(), loss.detach(), grad.abs()


def plot_loss_curves(
    names: Sequence[str],
    alphas: Sequence[float] | None = None,
    *,
    num_points: int = 400,
    side: float = 32.0,
    grad_ylim: float | None = None,
) -> Figure:
    """Figure 1 for registered losses: loss (left) and ``|dL/dIoU|`` (right) against IoU.

    Each loss is drawn along the path of :func:`loss_curve` (a ``side`` x ``side`` square
    and its copy shifted along x), once per alpha in ``alphas`` (default: its own alpha).

    Args:
        names: registered loss names (``noisybox list-losses``).
        alphas: powers to draw each loss at; ``None`` keeps each loss's default.
        num_points: IoU samples on ``[0, 1]``.
        side: the squares' side, in the units of the losses' constants (NWD's ``C``).
        grad_ylim: upper y limit of the gradient panel; ``None`` fits the curves.

    Returns:
        A matplotlib ``Figure`` (Agg backend, not shown).

    Raises:
        ValueError: no names, an unknown name or a bad alpha.
    """
    if len(names) == 0:
        raise ValueError("Expected at least one loss name but got none")
    curves = []
    for name in names:
        for a in alphas if alphas else [None]:
            label = name if a is None else f"{name}, alpha = {a:g}"
            curves.append((label, loss_curve(name, a, num_points, side=side)))
    from matplotlib.figure import Figure  # noqa: PLC0415  (lazy: keep import light)

    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    for label, (iou, loss, grad) in curves:
        ax_loss.plot(iou.numpy(), loss.numpy(), label=label)
        ax_grad.plot(iou.numpy(), grad.numpy(), label=label)
    ax_loss.set(xlabel="IoU", ylabel="loss", xlim=(0, 1), ylim=(0, None))
    ax_grad.set(xlabel="IoU", ylabel="|d loss / d IoU|", xlim=(0, 1), ylim=(0, grad_ylim))
    ax_loss.set_title(f"loss along a shifted {side:g} px square")
    ax_grad.set_title("absolute gradient")
    ax_loss.legend(fontsize="small")
    ax_grad.grid(alpha=0.3)
    ax_loss.grid(alpha=0.3)
    return fig
