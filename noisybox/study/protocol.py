"""Pre-registration: a study's protocol written before its first cell, stamped, and checked.

:func:`protocol_skeleton` writes a ``PROTOCOL.md`` from a study config: the question, the
grid, the primary metric and the decision rule, what counts as higher, lower or more robust,
and the number of comparisons. A config that names its protocol (``protocol:
PROTOCOL.md``) cannot start its first cell while the file is missing;
:func:`stamp_protocol` writes the file's SHA-256, its text and the time into
``benchmark.json`` before the first cell trains. :func:`protocol_section` is the report's
account of it: when it was fixed and, if the file changed since, both hashes and what
changed (a unified diff), so an edit after the fact is visible rather than absorbed.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from noisybox._fileio import atomic_write_json
from noisybox.errors import NoisyboxError

__all__ = ["protocol_path", "protocol_section", "protocol_skeleton", "stamp_protocol"]


def protocol_path(config: Mapping[str, Any], base_dir: str | Path) -> Path | None:
    """The protocol file a stored config names (``None`` if it names none).

    >>> protocol_path({"protocol": "PROTOCOL.md"}, "/s"), protocol_path({}, "/s")
    (PosixPath('/s/PROTOCOL.md'), None)
    """
    name = config.get("protocol")
    if not isinstance(name, str) or not name:
        return None
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stamp_protocol(folder: Any, now: str) -> dict[str, Any] | None:
    """Stamp the protocol of the study in ``folder`` into its ``benchmark.json``, once.

    Called before the first cell trains (and harmless later: an existing stamp is kept).

    Args:
        folder: a :class:`~noisybox.study.results.ResultsFolder`.
        now: the time to record (ISO 8601).

    Returns:
        The stamp, or ``None`` when the config names no protocol (or is a calibration).

    Raises:
        NoisyboxError: the config names a protocol file that does not exist.
    """
    stored = folder.read_stored()
    config = stored["config"]
    if config.get("mode", "study") != "study":
        return None
    path = protocol_path(config, stored.get("base_dir", "."))
    if path is None:
        return None
    if "protocol" in stored:
        return dict(stored["protocol"])
    if not path.is_file():
        raise NoisyboxError(
            f"Expected the protocol {path} that {folder.config_json} names before the first "
            "cell but got no such file; write it (`noisybox protocol CONFIG -o FILE` gives a "
            "skeleton) and commit it before running the study"
        )
    text = path.read_text(encoding="utf-8")
    records = sorted(folder.records_dir.glob("*.json")) if folder.records_dir.is_dir() else []
    stamp = {
        "file": config["protocol"],
        "sha256": _sha256(text),
        "stamped_at": now,
        "records_before": len(records),
        "text": text,
    }
    atomic_write_json(folder.config_json, {**stored, "protocol": stamp})
    return stamp


def protocol_section(stored: Mapping[str, Any], root: str | Path | None = None) -> list[str]:
    """The report's lines about the protocol of a stored study (empty if it has none).

    Reports the stamp (file, hash, time, and how many records came before it), then
    compares the file as it is now: unchanged, missing, or changed with both hashes and a
    unified diff of the stamped text against the current one. The file is looked for in
    the results folder ``root`` first (where a study keeps it beside its records, whatever
    machine or checkout reads it), then beside the config it was stamped from; the lines
    name no absolute path, so a report reads the same on every machine.
    """
    stamp = stored.get("protocol")
    if not isinstance(stamp, Mapping):
        return []
    lines = ["", "## Protocol", ""]
    before = int(stamp.get("records_before", 0))
    when = (
        "before the first cell"
        if before == 0
        else f"after {before} cell(s) had finished: those were not pre-registered"
    )
    lines.append(
        f"`{stamp.get('file')}` was stamped at {stamp.get('stamped_at')} (sha256 "
        f"`{str(stamp.get('sha256'))[:16]}`), {when}."
    )
    candidates = [protocol_path(stored.get("config", {}), stored.get("base_dir", "."))]
    if root is not None:
        candidates.insert(0, protocol_path(stored.get("config", {}), root))
    path = next((p for p in candidates if p is not None and p.is_file()), None)
    if path is None:
        lines.append(
            f"`{stamp.get('file')}` is not found beside the results or their config now; the "
            "stamped text is in benchmark.json."
        )
        return lines
    text = path.read_text(encoding="utf-8")
    now_sha = _sha256(text)
    if now_sha == stamp.get("sha256"):
        lines.append("The file is unchanged since.")
        return lines
    old = str(stamp.get("text", ""))
    diff = difflib.unified_diff(
        old.splitlines(), text.splitlines(), "stamped", "now", lineterm="", n=1
    )
    lines += [
        f"**The protocol was edited after it was stamped**: sha256 `{str(stamp['sha256'])[:16]}`"
        f" then, `{now_sha[:16]}` now. What changed:",
        "",
        "```diff",
        *diff,
        "```",
    ]
    return lines


def _grid_lines(config: Mapping[str, Any]) -> list[str]:
    losses = [_loss_text(lo) for lo in config.get("losses", [])]
    detectors = [d.get("name", d) if isinstance(d, Mapping) else d for d in config["detectors"]]
    etas = ", ".join(f"{float(e):g}" for e in config.get("etas", []))
    seeds = config.get("seeds", [])
    return [
        f"- Detectors: {', '.join(map(str, detectors))}.",
        f"- Losses: {', '.join(losses)}.",
        f"- Noise rates (eta): {etas}; noise: {config.get('noise')}.",
        f"- Seeds: {', '.join(map(str, seeds))} ({len(seeds)}; each seed draws the noise and "
        "the training; cells of one seed are paired).",
        f"- Dataset: {config.get('dataset')}.",
        f"- Schedule: {config.get('schedule')}.",
    ]


def _loss_text(loss: Any) -> str:
    if not isinstance(loss, Mapping):
        return str(loss)
    extra = [f"{k} {v}" for k, v in loss.items() if k != "name"]
    return str(loss.get("name")) + (f" ({', '.join(extra)})" if extra else "")


def protocol_skeleton(config: Mapping[str, Any], reference: str | None = None) -> str:
    """A ``PROTOCOL.md`` skeleton for a study config (``BenchmarkConfig.to_dict()``).

    The parts that follow from the config are filled in (grid, number of comparisons, the
    decision rule of the toolkit); the question and the calibration are left for the
    author, marked ``TODO``.

    >>> text = protocol_skeleton({"name": "s", "detectors": ["fcos"], "losses": ["iou",
    ...     {"name": "alpha-iou", "alpha": 3}], "etas": [0, 0.3], "seeds": [0, 1]})
    >>> "2 comparisons" in text and "TODO" in text
    True
    """
    losses = [_loss_text(lo) for lo in config.get("losses", [])]
    ref = reference or (config.get("report") or {}).get("reference") or (losses or ["?"])[0]
    etas = [float(e) for e in config.get("etas", [])]
    noisy = [e for e in etas if e > 0]
    others = max(0, len(losses) - 1)
    comparisons = others * len(etas)
    retention = others * len(noisy)
    lines = [
        f"# Protocol: `{config.get('name', 'study')}`",
        "",
        "Written and committed before the first cell; `run-benchmark` stamps its sha256 into",
        "`benchmark.json` before the first cell trains, and the report shows any later edit.",
        "",
        "## Question",
        "",
        "TODO: the one question this study answers, and why it is asked.",
        "",
        "## Grid",
        "",
        *_grid_lines(config),
        "",
        "## Primary metric and decision rule",
        "",
        f"- Primary metric: COCO mAP (AP at IoU 0.50:0.95) on the clean test split, of each "
        f"loss paired seed by seed with `{ref}`; robustness is the retention, noisy mAP over "
        "the same seed's clean mAP, paired the same way.",
        "- Higher / lower mAP (under noise, at an eta): the 95 % t interval of the paired "
        "difference in mAP excludes 0.",
        "- More / less robust: the 95 % t interval of the paired difference in retention "
        "excludes 0.",
        '- Otherwise: "cannot be told apart at this scale". Exact Wilcoxon and sign-test '
        "p-values are reported beside each interval, not used for the decision.",
        f"- Comparisons: {comparisons} comparisons of mAP ({others} loss(es) x {len(etas)} "
        f"eta(s)) and {retention} of retention; at 95 % about "
        f"{0.05 * (comparisons + retention):.2f} intervals would exclude 0 by chance, and the "
        "report says so beside the count.",
        "- Secondary (reported, not decided on): AP50, AP75, mAP75:95, the learning curves.",
        "",
        "## Calibration",
        "",
        "The schedule, input size and augmentation were chosen with `noisybox calibrate` on the",
        "validation split (clean boxes); the test split was not used for any choice.",
        "",
        "TODO: the calibration table (candidate, epochs, val AP50 / mAP, convergence, time).",
        "",
        "## Convergence and collapse",
        "",
        "A clean cell that fails the convergence check, and every collapsed cell, is reported",
        "as such and not read as a result.",
        "",
    ]
    return "\n".join(lines)
