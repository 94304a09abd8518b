"""Figure 1 of the Alpha-IoU paper: ``1 - IoU^alpha`` and ``|dL/dIoU|`` against IoU.

matplotlib is imported inside the function so that importing :mod:`noisybox.losses`
does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from noisybox.losses.alpha_iou import alpha_iou_term

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_alpha_iou_curves"]

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
