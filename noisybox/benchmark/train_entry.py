"""``python -m noisybox.benchmark.train_entry train --config cell.json``: the ``noisybox``
command line as a module, so that ``torchrun -m`` can start it on every DDP rank."""

from __future__ import annotations

from noisybox.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
