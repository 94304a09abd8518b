"""Seeds split into streams: the one way noisybox turns a seed into independent draws.

A stream is named by a path of integers ``(seed, *keys)``: the annotation-level
corruptions draw from ``(seed, k)`` (``k`` = 1 missing, 2 class_flip, 3 extra, 4 relocate),
the synthetic dataset's image ``i`` of a split from ``(seed, split_code, i)``, the data
loader's order from ``(seed, epoch)`` and each item's augmentation from
``(seed, epoch, index)``. Every stream is ``numpy.random.SeedSequence`` hashing that path
(``SeedSequence([seed, *keys])``, what ``numpy.random.default_rng([seed, *keys])`` does),
so two paths give independent streams and one path always the same one. One exception,
numpy's: ``SeedSequence`` pads its entropy with zeros, so paths that differ only by
trailing zeros share a stream (``(seed, epoch)`` and ``(seed, epoch, 0)``: the loader's
order and item 0's augmentation seed, one a torch permutation, the other albumentations).
A new stream should use keys from 1, or paths of one fixed length.

``SeedSequence(seed).spawn(n)`` is numpy's other way to split a seed; it gives other
streams than the entropy lists above, and those streams are pinned by published files
(the corrupted annotations, the synthetic dataset's digest, the study's records), so every
helper here reproduces the stream its call site drew before it existed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["child_seeds", "seed_sequence", "stream_rng", "stream_seed"]

_SEED_RANGE = 2**63


def seed_sequence(*path: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of the stream ``path`` (a seed, then any number of keys).

    Raises:
        ValueError: a negative integer in ``path`` (numpy's message).

    >>> seed_sequence(0, 1).entropy
    [0, 1]
    """
    return np.random.SeedSequence([int(v) for v in path])


def stream_rng(*path: int) -> np.random.Generator:
    """A numpy generator of the stream ``path``: ``numpy.random.default_rng([*path])``.

    >>> int(stream_rng(0, 1).integers(1000)) == int(np.random.default_rng([0, 1]).integers(1000))
    True
    """
    return np.random.default_rng(seed_sequence(*path))


def stream_seed(*path: int) -> int:
    """A 63-bit integer seed of the stream ``path`` (for ``torch.Generator.manual_seed`` and
    the augmentation pipelines, which take an integer, not a generator).

    Any integers are accepted (each is taken modulo ``2**63``, so a negative epoch is one).

    >>> stream_seed(0)
    6375474604893067239
    """
    words = seed_sequence(*(int(v) % _SEED_RANGE for v in path)).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def child_seeds(seed: int, n: int) -> list[int]:
    """``n`` 32-bit seeds for the ``n`` children of something seeded with ``seed`` (the
    transforms of an augmentation pipeline).

    >>> child_seeds(123, 2)
    [693650678, 2973253328]
    """
    return [int(v) for v in seed_sequence(seed).generate_state(n, np.uint32)]
