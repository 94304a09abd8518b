"""The resume state of an Ultralytics cell: its history, written after every epoch, and
whether a saved run can continue (:mod:`noisybox.study.ultralytics_cell`).

After every epoch (once Ultralytics has saved ``train/weights/last.pt``) the cell writes
:data:`STATE_FILE` beside it: the history so far, the box loss's state (Wise-IoU v3's
running mean) and the key of the run (its training arguments and loss). :func:`load_state`
reads it back for a re-run with the same key whose checkpoint matches it, and otherwise
starts over; :class:`EpochRecorder` holds the callbacks that keep it.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from noisybox._fileio import atomic_write_json, read_json_object
from noisybox.errors import NoisyboxError

__all__ = ["STATE_FILE", "EpochRecorder", "load_state"]

#: The cell's resume state, beside Ultralytics' ``train/`` folder in the cell folder.
STATE_FILE = "ultralytics_state.json"


def load_state(
    state_path: Path, weights: Path, key: dict[str, Any], *, train_dir: Path
) -> dict[str, Any]:
    """The saved state of the run ``key`` describes, or a fresh one.

    Starting over keeps nothing of an earlier, different or broken run: ``train_dir``
    (Ultralytics' folder) and the state file are removed.
    """
    state = _resumable_state(state_path, weights, key)
    if state is None:
        shutil.rmtree(train_dir, ignore_errors=True)
        state_path.unlink(missing_ok=True)
        state = {"key": key, "trained": False, "history": [], "loss_state": None}
    return state


class EpochRecorder:
    """Ultralytics callbacks that keep a cell's history and its resume state.

    ``on_epoch_start`` puts the saved box-loss state back at the first resumed epoch;
    ``on_epoch_end`` appends the epoch's history entry (``resumed_from`` on the first
    resumed one), writes the state, prints a plain line when asked, and scores the
    learning curve every ``eval_every`` epochs but the last (the final evaluation's).

    Args:
        state: the cell's state (:func:`load_state`); updated and written after every epoch.
        history: the history so far (a copy of ``state["history"]``), appended to.
        state_path: where the state is written.
        cell_id: the cell, for the plain lines.
        plain: print a plain line per epoch to stderr (a log rather than Ultralytics' bars).
        eval_every: score the trainer's weights after every k-th epoch (0: never).
        evaluate: ``(trainer, epoch, epochs) -> (metrics, seconds)``.
    """

    def __init__(
        self,
        state: dict[str, Any],
        history: list[dict[str, Any]],
        state_path: Path,
        cell_id: str,
        *,
        plain: bool,
        eval_every: int,
        evaluate: Callable[[Any, int, int], tuple[dict[str, float], float]],
    ) -> None:
        self.state = state
        self.history = history
        self.resumed_from = len(history)
        self.state_path = state_path
        self.cell_id = cell_id
        self.plain = plain
        self.eval_every = eval_every
        self.evaluate = evaluate
        self.epoch_start = time.perf_counter()

    def on_epoch_start(self, run: Any) -> None:
        self.epoch_start = time.perf_counter()
        loss_state = self.state["loss_state"]
        if loss_state is not None and len(self.history) == self.resumed_from:
            _load_loss_state(run.model, loss_state)

    def on_epoch_end(self, run: Any) -> None:
        if int(run.epoch) >= int(run.epochs):
            return  # the final evaluation calls on_fit_epoch_end once more, at epochs + 1
        entry = _history_entry(run, time.perf_counter() - self.epoch_start)
        if self.resumed_from and len(self.history) == self.resumed_from:
            entry["resumed_from"] = self.resumed_from
        self.history.append(entry)
        # last.pt of this epoch is on disk (Ultralytics saves before this callback)
        self.state["history"] = self.history
        self.state["loss_state"] = _loss_state(run.model)
        atomic_write_json(self.state_path, self.state)
        if self.plain:
            print(f"{self.cell_id}: {_epoch_line(entry, int(run.epochs))}", file=sys.stderr)
        epoch, epochs = entry["epoch"], int(run.epochs)
        if self.eval_every > 0 and epoch % self.eval_every == 0 and epoch < epochs:
            # the last epoch is the final evaluation's, on the saved weights
            entry["metrics"], entry["eval_time_s"] = self.evaluate(run, epoch, epochs)
            atomic_write_json(self.state_path, self.state)


def _resumable_state(state_path: Path, weights: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of an interrupted run this cell can continue, or ``None``.

    It continues when the state was written for the same ``key`` and either its training
    had finished (``last.pt`` present) or ``last.pt`` is a resumable checkpoint (optimiser
    state kept) of exactly as many epochs as the state's history.
    """
    if not state_path.is_file() or not weights.is_file():
        return None
    try:
        state = read_json_object(state_path, what="an Ultralytics cell state")
    except NoisyboxError:
        return None
    if state.get("key") != key or not isinstance(state.get("history"), list):
        return None
    if state.get("trained") is True:
        return state
    done = _checkpoint_epochs(weights)
    return state if done is not None and done == len(state["history"]) > 0 else None


def _checkpoint_epochs(weights: Path) -> int | None:
    """Epochs trained by a resumable Ultralytics checkpoint; ``None`` if it cannot resume.

    Ultralytics strips the optimiser (and sets ``epoch`` to -1) when training finishes, and
    a checkpoint cut short on disk does not load: neither can resume.
    """
    import torch

    try:  # Ultralytics' checkpoints pickle the model: they need weights_only=False
        ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    except Exception:  # a torn or foreign file: start over
        return None
    if not isinstance(ckpt, dict) or ckpt.get("optimizer") is None:
        return None
    epoch = ckpt.get("epoch")
    return epoch + 1 if isinstance(epoch, int) and epoch >= 0 else None


def _history_entry(run: Any, seconds: float) -> dict[str, Any]:
    """The history entry of the epoch an Ultralytics trainer has just finished."""
    losses = {k: float(v) for k, v in (run.tloss or {}).items()}
    entry: dict[str, Any] = {
        "epoch": int(run.epoch) + 1,
        "loss": sum(losses.values()),
        **losses,
        "lr": float(run.optimizer.param_groups[0]["lr"]),
        "time_s": seconds,
    }
    alpha = getattr(run, "box_alpha", None)
    if alpha is not None:
        entry["alpha"] = float(alpha)
    fg = getattr(run, "fg_iou_history", None)
    if fg:
        entry["fg_iou"] = float(fg[-1])
    return entry


def _epoch_line(entry: dict[str, Any], epochs: int) -> str:
    """A history entry as one plain progress line (for a log: no bars, no escapes).

    >>> _epoch_line({"epoch": 3, "loss": 4.5678, "time_s": 12.34}, 60)
    'epoch 3/60: loss 4.568 (12.3 s)'
    """
    return f"epoch {entry['epoch']}/{epochs}: loss {entry['loss']:.3f} ({entry['time_s']:.1f} s)"


def _loss_state(model: Any) -> dict[str, list[float]] | None:
    """The plugged box loss's buffers (Wise-IoU v3's running mean) as JSON lists."""
    from noisybox.detectors.ultralytics import plugged_box_loss

    box = plugged_box_loss(model)
    if box is None:
        return None
    buffers = box.box_loss.state_dict()
    return {k: v.detach().cpu().reshape(-1).tolist() for k, v in buffers.items()} or None


def _load_loss_state(model: Any, saved: dict[str, list[float]]) -> None:
    """Put :func:`_loss_state`'s buffers back into the plugged box loss of ``model``."""
    import torch

    from noisybox.detectors.ultralytics import plugged_box_loss

    box = plugged_box_loss(model)
    if box is None:
        return
    current = box.box_loss.state_dict()
    box.box_loss.load_state_dict(
        {
            k: torch.tensor(v, dtype=current[k].dtype, device=current[k].device).reshape(
                current[k].shape
            )
            for k, v in saved.items()
        }
    )
