"""Upper bounds of the size-like options, each from the memory or disk it would take.

Every option that sizes an allocation or an output (an image side, a number of images, a
figure's pixels, histogram bins) is checked against one of these bounds before anything is
allocated or written, so a typo (``--tile-size 100000``) is one line naming the limit and
its reason, not a process the kernel kills after it has eaten the machine's memory. The
bounds sit far above any real use; the README's "Limits" section lists them.
"""

from __future__ import annotations

from noisybox.errors import NoisyboxError

__all__ = [
    "MAX_BINS",
    "MAX_DATASET_IMAGES",
    "MAX_DPI",
    "MAX_FIGURE_PIXELS",
    "MAX_IMAGE_SIZE",
    "MAX_OBJECTS",
    "MAX_SEED",
    "MAX_TILE_SIZE",
    "check_limit",
    "reason",
]

#: Side of a synthetic or training image: a float64 canvas of 4096^2 is 128 MiB, and a
#: training batch of them already fills a GPU.
MAX_IMAGE_SIZE = 4096
#: Images per split of a synthetic dataset: 100 000 PNGs of 128 px are about 1 GB.
MAX_DATASET_IMAGES = 100_000
#: Objects per synthetic image (each is placed by rejection sampling).
MAX_OBJECTS = 100
#: Longest image side of a preview tile.
MAX_TILE_SIZE = 2048
#: Pixels of one rendered figure (preview grid, loss plot): 100 million RGBA pixels are
#: 400 MB, before matplotlib's own copies.
MAX_FIGURE_PIXELS = 100_000_000
#: Resolution of a saved plot: a 9 x 3.6 inch plot at 1200 dpi is 47 million pixels.
MAX_DPI = 1200
#: Histogram bins over IoU in [0, 1]: far finer than the 4 decimals IoU is reported with.
MAX_BINS = 10_000
#: Seeds: numpy and torch take 64-bit seeds.
MAX_SEED = 2**63 - 1

# Why each bound exists, for the messages (the bounds are distinct numbers).
_WHY: dict[int, str] = {
    MAX_IMAGE_SIZE: "a 4096 px float canvas is 128 MiB per image",
    MAX_DATASET_IMAGES: "the dataset is written to disk as PNG files",
    MAX_OBJECTS: "objects are placed one by one",
    MAX_TILE_SIZE: "each tile is rendered in memory",
    MAX_FIGURE_PIXELS: "the figure is rendered in memory",
    MAX_DPI: "the figure is rendered in memory at this resolution",
    MAX_BINS: "IoU is reported to 4 decimals",
    MAX_SEED: "numpy and torch take 64-bit seeds",
}


def reason(limit: int) -> str:
    """Why ``limit`` (one of this module's bounds) exists, in a few words ("" if unknown)."""
    return _WHY.get(limit, "")


def check_limit(name: str, value: float, limit: int, why: str | None = None) -> None:
    """Refuse ``value`` above ``limit`` with one line naming the limit and its reason.

    Raises:
        NoisyboxError: ``value > limit``.

    >>> check_limit("tile_size", 100000, MAX_TILE_SIZE)
    Traceback (most recent call last):
    ...
    noisybox.errors.NoisyboxError: Expected tile_size <= 2048 but got 100000 (each tile is rendered in memory)
    """
    if value > limit:
        because = why or reason(limit)
        raise NoisyboxError(
            f"Expected {name} <= {limit} but got {value}" + (f" ({because})" if because else "")
        )
