"""``python -m noisybox.engine --config run.json [--quiet]``: train one training config file.

The entry point ``torchrun -m noisybox.engine`` starts on every DDP rank (the benchmark's
launcher does so for ``--gpus N``); rank 0 writes ``out_dir/last.pt`` and
``out_dir/result.json``. Errors are printed as one line on stderr (exit code 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from noisybox.engine.config import TrainConfig
from noisybox.engine.loop import train
from noisybox.errors import NoisyboxError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Train the config file named by ``--config``; the exit code.

    >>> main(["--config", "/nonexistent/run.json"])
    1
    """
    parser = argparse.ArgumentParser(
        prog="python -m noisybox.engine", description="Train one training config file."
    )
    parser.add_argument("--config", required=True, help="JSON or YAML file of TrainConfig fields.")
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    args = parser.parse_args(argv)
    try:
        train(TrainConfig.from_sources(args.config), progress=not args.quiet)
    except (NoisyboxError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
