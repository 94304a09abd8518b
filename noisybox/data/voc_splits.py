"""Pascal VOC image sets as split folders, and the named real datasets (BCCD).

A VOC year folder lists its splits in ``ImageSets/Main/<name>.txt``. :func:`write_voc_split`
writes one of them as a VOC folder of its own (the listed XML files, byte-identical, and a
link to the images) so that the benchmark, the trainer and the evaluator read a split as
any VOC folder; :func:`check_disjoint` makes sure the split a calibration evaluates on is
not one it trains on, and that no test image is a training or validation image.

:data:`NAMED_DATASETS` holds the real datasets noisybox knows by name. A user who cloned
one points the toolkit at its folder once (``dataset: {bccd: PATH}`` in a study, or the
environment variable of the dataset); :func:`check_named_dataset` checks the layout, the
split lists and a digest of the annotation files against the published copy, so that a
changed or partial copy is refused in one line instead of giving other numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from noisybox._fileio import atomic_dir, atomic_write_json, read_json_object
from noisybox.errors import NoisyboxError

_SPLIT_FILE = "noisybox-split.json"
#: One VOC year folder, or several read as one (VOC2007 and VOC2012).
VocRoots = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

__all__ = [
    "NAMED_DATASETS",
    "NamedVocDataset",
    "check_disjoint",
    "check_named_dataset",
    "listed_ids",
    "read_image_set",
    "voc_digest",
    "write_voc_split",
]


@dataclasses.dataclass(frozen=True)
class NamedVocDataset:
    """A real dataset in Pascal VOC layout that noisybox knows by name.

    Attributes:
        name: its name in a study config (``dataset: {<name>: PATH}``).
        env: the environment variable naming its folder where a config gives none.
        source: where a user gets it.
        license: its license.
        sets: the image sets and their sizes (``ImageSets/Main/<set>.txt``).
        images: the number of annotation files and of JPEG images.
        digest: :func:`voc_digest` of the published copy.
        splits: the image set of each role: ``train`` (what a study trains on and
            corrupts), ``val`` (what calibration evaluates on), ``test`` (the clean test
            set of a study), ``calibration_train`` (what calibration trains on: the
            training set without the validation images).
    """

    name: str
    env: str
    source: str
    license: str
    sets: dict[str, int]
    images: int
    digest: str
    splits: dict[str, str]


#: Real datasets known by name.
NAMED_DATASETS: dict[str, NamedVocDataset] = {
    "bccd": NamedVocDataset(
        name="bccd",
        env="NOISYBOX_BCCD",
        source="git clone https://github.com/Shenggan/BCCD_Dataset (folder BCCD/, commit "
        "d272fb14cdff6e473fafeeeba32aba5f560e9e43)",
        license="MIT",
        sets={"train": 205, "val": 87, "test": 72, "trainval": 292},
        images=364,
        digest="d193b7b0971352787fb9f0bb657fe2e9715a128423add7a6d5d08155ce20f3aa",
        splits={"train": "trainval", "val": "val", "test": "test", "calibration_train": "train"},
    ),
}


def read_image_set(root: str | os.PathLike[str], image_set: str) -> list[str]:
    """The image ids listed in ``root/ImageSets/Main/<image_set>.txt``, in file order.

    Raises:
        NoisyboxError: the list file is missing or lists an id twice (named).
    """
    path = Path(root) / "ImageSets" / "Main" / f"{image_set}.txt"
    if not path.is_file():
        raise NoisyboxError(f"Expected the VOC image set list {path} but got no such file")
    ids = [
        line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise NoisyboxError(f"Expected each image once in {path} but got {dup!r} twice")
    return ids


def voc_digest(root: VocRoots) -> str:
    """SHA-256 of a VOC folder's annotation files and split lists (names and bytes).

    Image bytes are left out (checking them would read every image); their presence is
    checked by :func:`check_named_dataset`.
    """
    h = hashlib.sha256()
    for r in _roots(root):
        files = sorted(r.glob("Annotations/*.xml")) + sorted(r.glob("ImageSets/Main/*.txt"))
        for path in files:
            h.update(path.relative_to(r).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def check_named_dataset(name: str, root: str | os.PathLike[str] | None) -> Path:
    """Check that ``root`` holds the named dataset as published; return its folder.

    Args:
        name: a key of :data:`NAMED_DATASETS`.
        root: the dataset's VOC folder (``None``: the dataset's environment variable).

    Raises:
        NoisyboxError: an unknown name, no folder, a missing split list or image, or
            annotation files that differ from the published copy (one line naming what).
    """
    if name not in NAMED_DATASETS:
        raise NoisyboxError(
            f"Expected a named dataset ({', '.join(NAMED_DATASETS)}) but got {name!r}"
        )
    spec = NAMED_DATASETS[name]
    if root is None:
        root = os.environ.get(spec.env)
        if not root:
            raise NoisyboxError(
                f"Expected the folder of {name} (set {spec.env} or give its path) but got "
                f"neither; get it with {spec.source}"
            )
    path = Path(os.path.expandvars(os.path.expanduser(str(root))))
    if not (path / "Annotations").is_dir() and (path / "BCCD" / "Annotations").is_dir():
        path = path / "BCCD"  # the clone's root rather than its dataset folder
    if not (path / "Annotations").is_dir():
        raise NoisyboxError(
            f"Expected the {name} folder (Annotations/, ImageSets/Main/, JPEGImages/) but got "
            f"{path}; get it with {spec.source}"
        )
    for image_set, size in spec.sets.items():
        ids = read_image_set(path, image_set)
        if len(ids) != size:
            raise NoisyboxError(
                f"Expected {size} images in {path}/ImageSets/Main/{image_set}.txt of {name} "
                f"but got {len(ids)}: a changed or partial copy"
            )
    xml = sorted(p.stem for p in (path / "Annotations").glob("*.xml"))
    jpg = {p.stem for p in (path / "JPEGImages").glob("*.jpg")}
    missing = [i for i in xml if i not in jpg]
    if len(xml) != spec.images or missing:
        raise NoisyboxError(
            f"Expected {spec.images} annotation files, each with its JPEG image, in {path} "
            f"but got {len(xml)} annotation files and {len(missing)} without an image"
            + (f" (first: {missing[0]}.jpg)" if missing else "")
            + ": a changed or partial copy"
        )
    digest = voc_digest(path)
    if digest != spec.digest:
        raise NoisyboxError(
            f"Expected the published annotations of {name} in {path} (digest "
            f"{spec.digest[:12]}) but got digest {digest[:12]}: the annotation files or "
            "split lists were changed; use the copy of its published commit, or give the "
            "changed copy as `voc: PATH` with its image sets"
        )
    return path


def check_disjoint(root: VocRoots, splits: dict[str, str]) -> None:
    """Refuse splits that share images where they must not.

    ``test`` must share no image with ``train``, ``val`` or ``calibration_train``, and
    ``calibration_train`` none with ``val``; roles absent from ``splits`` are not checked.

    Raises:
        NoisyboxError: naming the two image sets and a shared image id.
    """
    ids = {role: {i for _, i in listed_ids(root, name)} for role, name in splits.items()}
    pairs = [("test", "train"), ("test", "val"), ("test", "calibration_train")]
    pairs.append(("calibration_train", "val"))
    for a, b in pairs:
        if a in ids and b in ids and ids[a] & ids[b]:
            shared = sorted(ids[a] & ids[b])
            raise NoisyboxError(
                f"Expected the {a} image set {splits[a]!r} and the {b} image set "
                f"{splits[b]!r} of {root} to share no image but got {len(shared)} shared "
                f"(first: {shared[0]})"
            )


def _roots(root: VocRoots) -> list[Path]:
    return [Path(root)] if isinstance(root, (str, os.PathLike)) else [Path(r) for r in root]


def listed_ids(root: VocRoots, image_set: str) -> list[tuple[Path, str]]:
    """``(year folder, image id)`` of ``image_set`` over one or several VOC year folders.

    A year folder without the list contributes nothing (VOC2012 has no ``test``); at least
    one must have it, and an image id may appear in one folder only.

    Raises:
        NoisyboxError: no folder lists ``image_set``, or an id is listed by two folders.
    """
    roots = _roots(root)
    having = [r for r in roots if (r / "ImageSets" / "Main" / f"{image_set}.txt").is_file()]
    if not having:
        where = ", ".join(str(r) for r in roots)
        raise NoisyboxError(
            f"Expected the image set list ImageSets/Main/{image_set}.txt in {where} but got none"
        )
    out: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for r in having:
        for i in read_image_set(r, image_set):
            if i in seen:
                raise NoisyboxError(
                    f"Expected image {i!r} of the image set {image_set!r} in one year folder "
                    f"but got it in {seen[i]} and {r}"
                )
            seen[i] = r
            out.append((r, i))
    return out


def write_voc_split(root: VocRoots, image_set: str, out: str | os.PathLike[str]) -> Path:
    """Write the image set ``image_set`` of one or several VOC year folders as one VOC folder.

    ``out`` gets ``Annotations/`` with the listed XML files (byte-identical copies),
    ``JPEGImages/`` (a link to the year folder's, or with several year folders a link per
    image) and a marker naming the sources and the list; an ``out`` written from the same
    sources and list is reused as it is. The folder appears whole or not at all.

    Returns:
        ``out``.

    Raises:
        NoisyboxError: a list is missing (see :func:`listed_ids`), an XML file it names is
            missing, or ``out`` holds something else than an earlier split.
    """
    out = Path(out)
    roots = _roots(root)
    pairs = listed_ids(roots, image_set)
    what = {
        "sources": [str(r.resolve()) for r in roots],
        "image_set": image_set,
        "images": len(pairs),
    }
    marker = out / _SPLIT_FILE
    if marker.is_file() and read_json_object(marker) == what:
        return out
    with atomic_dir(out, manifest=_SPLIT_FILE) as tmp:
        (tmp / "Annotations").mkdir()
        for r, i in pairs:
            xml = r / "Annotations" / f"{i}.xml"
            if not xml.is_file():
                raise NoisyboxError(
                    f"Expected {xml} for image {i!r} of {r}/ImageSets/Main/{image_set}.txt "
                    "but got no such file"
                )
            (tmp / "Annotations" / xml.name).write_bytes(xml.read_bytes())
        if len(roots) == 1:
            (tmp / "JPEGImages").symlink_to(roots[0].resolve() / "JPEGImages")
        else:
            (tmp / "JPEGImages").mkdir()
            for r, i in pairs:
                (tmp / "JPEGImages" / f"{i}.jpg").symlink_to(
                    r.resolve() / "JPEGImages" / f"{i}.jpg"
                )
        atomic_write_json(tmp / _SPLIT_FILE, what, indent=None)
    return out
