"""Preview grids and IoU histograms: pixels where the boxes are, real PNGs, clean CLI errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from matplotlib.axes import Axes
from PIL import Image, ImageDraw
from torchvision.ops import box_iou as tv_box_iou

from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations
from noisybox.data import make_shapes_dataset
from noisybox.formats import read_annotations
from noisybox.viz import (
    CLEAN_STYLE,
    NOISY_STYLE,
    BoxStyle,
    class_name_map,
    draw_boxes,
    iou_histogram,
    outline_mask,
    perturb_annotations,
    preview_annotations,
    select_images,
)

DATA = Path(__file__).parent / "data"
YOLO_DIR = DATA / "yolo"
VOC_DIR = DATA / "voc" / "VOC2007"

GREY = (128, 128, 128)
CLEAN_BOX = [20.0, 30.0, 120.0, 110.0]  # xyxy on a 200 x 150 image
NOISY_BOX = [60.0, 20.0, 180.0, 130.0]


def _run(*args: str) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr, result.exception


@pytest.fixture(scope="module")
def uniform_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two uniform grey images, one box each, and a noisy copy with the box moved."""
    root = tmp_path_factory.mktemp("uniform")
    (root / "img").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (200, 150), GREY).save(root / "img" / name)
    x1, y1, x2, y2 = CLEAN_BOX
    doc = {
        "images": [
            {"id": 1, "file_name": "img/a.png", "width": 200, "height": 150},
            {"id": 2, "file_name": "img/b.png", "width": 200, "height": 150},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
             "area": 1.0, "iscrowd": 0},
            {"id": 20, "image_id": 2, "category_id": 1, "bbox": [5, 5, 50, 50], "area": 1.0,
             "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }  # fmt: skip
    (root / "clean.json").write_text(json.dumps(doc))
    nx1, ny1, nx2, ny2 = NOISY_BOX
    doc["annotations"][0]["bbox"] = [nx1, ny1, nx2 - nx1, ny2 - ny1]
    (root / "noisy.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = make_shapes_dataset(tmp_path_factory.mktemp("shapes"), num_train=1, num_val=8,
                             image_size=96, seed=3)  # fmt: skip
    return ds.val_annotations


# -- the pure rasteriser ------------------------------------------------------------------


@pytest.mark.parametrize("thickness", [1, 2, 3])
def test_solid_outline_matches_pil_rectangle(thickness: int) -> None:
    rng = np.random.default_rng(thickness)
    for _ in range(20):
        x1, y1 = rng.integers(0, 30, size=2)
        # sides >= 2 * thickness: PIL paints outside thinner rectangles
        x2 = x1 + rng.integers(2 * thickness, 30)
        y2 = y1 + rng.integers(2 * thickness, 25)
        ref = Image.new("L", (64, 48), 0)
        # PIL's corners are inclusive pixel indices; ours are pixel edges.
        ImageDraw.Draw(ref).rectangle([x1, y1, x2 - 1, y2 - 1], outline=255, width=thickness)
        box = np.array([[x1, y1, x2, y2]], dtype=float)
        mask = outline_mask(box, (64, 48), thickness=thickness)
        np.testing.assert_array_equal(mask, np.asarray(ref) > 0, err_msg=str(box))
    # a box thinner than two strokes is filled, and never painted beyond its extent
    thin = outline_mask(np.array([[5.0, 5.0, 6.0, 9.0]]), (12, 12), thickness=thickness)
    filled = np.zeros((12, 12), dtype=bool)
    filled[5:9, 5:6] = True
    np.testing.assert_array_equal(thin, filled)


def test_draw_boxes_colours_edges_not_interior_and_keeps_input() -> None:
    image = np.full((150, 200, 3), GREY, dtype=np.uint8)
    out = draw_boxes(image, np.array([CLEAN_BOX]), CLEAN_STYLE)
    assert (image == GREY).all()  # input untouched
    green = np.all(out == CLEAN_STYLE.color, axis=2)
    x1, y1, x2, y2 = (int(v) for v in CLEAN_BOX)
    assert green[y1:y2, x1].all() and green[y1:y2, x2 - 1].all()
    assert green[y1, x1:x2].all() and green[y2 - 1, x1:x2].all()
    assert not green[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].any()
    # the halo is the only other change, one pixel either side of the stroke
    changed = np.any(out != image, axis=2)
    grown = np.zeros_like(changed)
    grown[y1 - 1 : y2 + 1, x1 - 1 : x2 + 1] = True
    grown[y1 + 3 : y2 - 3, x1 + 3 : x2 - 3] = False
    np.testing.assert_array_equal(changed, grown)


def test_dashes_alternate_and_clip_at_the_border() -> None:
    style = BoxStyle((255, 0, 0), thickness=1, dash=(3, 2))
    out = draw_boxes(np.zeros((20, 20, 3), np.uint8), np.array([[-5.0, 2.0, 14.0, 30.0]]), style)
    top = out[2, :, 0] > 0
    # dashes start at the box's corner x = -5: on for x in -5..-3, 0..2, 5..7, 10..12; x = 13
    # is the right edge, whose own dash starts at the corner row
    assert top.tolist() == [x in (0, 1, 2, 5, 6, 7, 10, 11, 12, 13) for x in range(20)]
    # the bottom edge (y = 29) is outside the image: the last row holds only the right edge
    assert np.flatnonzero(out[19, :, 0]).tolist() == [13]
    assert np.flatnonzero(out[:, 13, 0]).tolist() == [2, 3, 4, 7, 8, 9, 12, 13, 14, 17, 18, 19]


def test_draw_boxes_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="Expected an image of shape"):
        draw_boxes(np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="thickness"):
        outline_mask(np.zeros((1, 4)), (4, 4), thickness=0)


# -- the grid -----------------------------------------------------------------------------


def _png_point(ax: Axes, x: float, y: float, png_h: int) -> tuple[int, int]:
    """PNG pixel of data point ``(x, y)`` (the figure is saved at its own size and dpi)."""
    dx, dy = ax.transData.transform((x, y))
    return int(round(dx)), int(round(png_h - dy))


def _near(rgb: np.ndarray, px: tuple[int, int], colour: tuple[int, int, int], r: int = 3) -> bool:
    x, y = px
    win = rgb[y - r : y + r + 1, x - r : x + r + 1].astype(int)
    return bool((np.abs(win - np.array(colour)).sum(axis=2) < 30).any())


def test_grid_png_has_clean_and_noisy_boxes_where_they_are(uniform_coco: Path) -> None:
    out = uniform_coco / "grid.png"
    fig = preview_annotations(uniform_coco / "clean.json", uniform_coco / "noisy.json",
                              image_ids=[1], output=out, tile_size=300)  # fmt: skip
    png = np.asarray(Image.open(out).convert("RGB"))
    w_in, h_in = fig.get_size_inches()
    assert png.shape[:2] == (round(h_in * fig.dpi), round(w_in * fig.dpi))
    ax = fig.axes[0]
    s = ax.noisybox_scale
    assert s == pytest.approx(300 / 200)
    h = png.shape[0]

    def at(x: float, y: float) -> tuple[int, int]:
        return _png_point(ax, x * s, y * s, h)

    x1, y1, x2, y2 = CLEAN_BOX
    for point in (at(x1 + 1, (y1 + y2) / 2), at((x1 + x2) / 2, y2 - 1), at(x1 + 1, y1 + 1)):
        assert _near(png, point, CLEAN_STYLE.color), point
    n1, m1, n2, m2 = NOISY_BOX
    # right edge of the noisy box, at a height where a dash is drawn (first 6 of every 10 px)
    assert _near(png, at(n2 - 1, m1 + 2 / s), NOISY_STYLE.color)
    assert _near(png, at(n1 + 1, m1 + 2 / s), NOISY_STYLE.color)
    for far in (at(x1 + 15, (y1 + y2) / 2), at(190, 140), at(5, 140)):
        assert tuple(png[far[1], far[0]]) == GREY, far
    # the clean colour does not appear far from the clean box
    assert not _near(png, at(170, 60), CLEAN_STYLE.color, r=5)
    title = ax.get_title()
    expected = tv_box_iou(torch.tensor([CLEAN_BOX]), torch.tensor([NOISY_BOX])).item()
    assert f"mean IoU {expected:.2f}" in title
    assert any(t.get_text() == f"IoU {expected:.2f}" for t in ax.texts)
    assert any(t.get_text() == "thing" for t in ax.texts)


def test_on_the_fly_noise_equals_what_corrupt_writes(shapes: Path, tmp_path: Path) -> None:
    clean = read_annotations(shapes)
    noisy = perturb_annotations(clean, eta=0.25, seed=7, boundary="truncate")
    corrupt_annotations(shapes, tmp_path / "n.json", eta=0.25, seed=7, boundary="truncate")
    np.testing.assert_array_equal(noisy.boxes, read_annotations(tmp_path / "n.json").boxes)
    assert not np.array_equal(noisy.boxes, clean.boxes)
    fig = preview_annotations(shapes, eta=0.25, seed=7, boundary="truncate", num_images=3,
                              output=tmp_path / "g.png")  # fmt: skip
    assert "eta=0.25 boundary=truncate seed=7" in fig.get_suptitle()
    assert sum(1 for ax in fig.axes if ax.images) == 3
    assert Image.open(tmp_path / "g.png").size == tuple(
        round(v * fig.dpi) for v in fig.get_size_inches()
    )


def test_select_images_seeded_and_by_id(shapes: Path) -> None:
    ann = read_annotations(shapes)
    a = select_images(ann, num_images=4, seed=1)
    assert a.tolist() == select_images(ann, num_images=4, seed=1).tolist()
    assert len(set(a.tolist())) == 4
    assert any(select_images(ann, num_images=4, seed=k).tolist() != a.tolist() for k in range(5))
    assert select_images(ann, image_ids=["3", "000001.png"]).tolist() == [2, 0]


def test_class_names_yolo_by_index_and_too_few() -> None:
    ann = read_annotations(YOLO_DIR)
    assert class_name_map(ann) == {0: "cat", 1: "car"}
    assert class_name_map(ann, ["x", "y", "z"]) == {0: "x", 1: "y"}
    with pytest.raises(ValueError, match="Expected at least 2 class names"):
        class_name_map(ann, ["x"])


# -- the histogram ------------------------------------------------------------------------


def test_histogram_bars_and_mean_lines(shapes: Path, tmp_path: Path) -> None:
    noisy_path = tmp_path / "n.json"
    corrupt_annotations(shapes, noisy_path, eta=0.3, seed=2)
    fig, dists = iou_histogram(shapes, [noisy_path], etas=[0.1], bins=20,
                               output=tmp_path / "h.png")  # fmt: skip
    assert Image.open(tmp_path / "h.png").size == tuple(
        round(v * fig.dpi) for v in fig.get_size_inches()
    )
    # reference IoU from torchvision on the raw json boxes
    docs = [json.loads(Path(p).read_text()) for p in (shapes, noisy_path)]
    xyxy = [torch.tensor([a["bbox"] for a in d["annotations"]], dtype=torch.float64) for d in docs]
    for b in xyxy:
        b[:, 2:] += b[:, :2]
    ref = torch.diagonal(tv_box_iou(xyxy[0], xyxy[1])).numpy()
    image_of = np.array([a["image_id"] for a in docs[0]["annotations"]])
    per_image = np.mean([ref[image_of == i].mean() for i in np.unique(image_of)])
    d = dists[0]
    assert d.label.startswith("n.json: model=uniform eta=0.3")
    np.testing.assert_allclose(np.sort(d.ious), np.sort(ref), atol=1e-9)
    assert d.mean_iou == pytest.approx(ref.mean()) and d.mean_image_iou == pytest.approx(per_image)
    ax = fig.axes[0]
    xs = [line.get_xdata()[0] for line in ax.lines]
    assert xs[:2] == pytest.approx([ref.mean(), per_image])
    assert dists[1].mean_iou > d.mean_iou  # eta 0.1 is less noisy than 0.3
    # bar heights of each distribution are shares of its boxes
    filled = [p for p in ax.patches if p.get_fill()]
    assert len(filled) == 2
    heights = np.histogram(ref, bins=np.linspace(0, 1, 21))[0] / ref.size
    verts = filled[0].get_path().vertices
    assert verts[:, 1].max() == pytest.approx(heights.max())


# -- the CLI ------------------------------------------------------------------------------


def test_cli_preview_and_iou_hist_on_shapes(shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    code, stdout, _, _ = _run("preview", str(shapes), "--eta", "0.2", "-o", str(out), "-n", "4",
                              "--class-names", "a,b,c,d,e")  # fmt: skip
    assert code == 0, stdout
    assert "wrote" in stdout and "(4 images)" in stdout
    assert Image.open(out).format == "PNG"
    noisy = tmp_path / "n.json"
    corrupt_annotations(shapes, noisy, eta=0.2, seed=0)
    code, stdout, _, _ = _run("iou-hist", str(shapes), str(noisy), "--eta", "0.2", "--json",
                              "-o", str(tmp_path / "h.png"))  # fmt: skip
    assert code == 0, stdout
    rows = json.loads(stdout)["distributions"]
    # the file written by corrupt and the same noise on the fly are the same boxes
    assert rows[0]["mean_iou"] == pytest.approx(rows[1]["mean_iou"])
    assert (tmp_path / "h.png").is_file()


def test_cli_preview_yolo_fixture(tmp_path: Path) -> None:
    out = tmp_path / "y.png"
    code, stdout, _, _ = _run("preview", str(YOLO_DIR), "--eta", "0.3", "-o", str(out))
    assert code == 0, stdout
    assert "(2 images)" in stdout  # c.jpg has no labels


def _one_line_error(code: int, stderr: str, exc: BaseException | None, *needles: str) -> None:
    assert code == 1, stderr
    assert isinstance(exc, SystemExit)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: Expected"), stderr
    for needle in needles:
        assert needle in lines[0], (needle, stderr)


def test_cli_bad_images_one_line(uniform_coco: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(uniform_coco, root)
    clean, out = str(root / "clean.json"), str(tmp_path / "x.png")
    code, _, err, _ = _run("preview", clean, "--images", str(tmp_path / "nope"), "-o", out)
    assert code == 2 and "nope" in err and "does not exist" in err
    # images that do not match the annotations (wrong size)
    Image.new("RGB", (100, 100), GREY).save(root / "img" / "a.png")
    code, _, err, exc = _run("preview", clean, "--image-ids", "1", "-o", out)
    _one_line_error(code, err, exc, "a.png", "200x150", "100x100")
    # an unreadable image
    (root / "img" / "a.png").write_bytes(b"not a png")
    code, _, err, exc = _run("preview", clean, "--image-ids", "1", "-o", out)
    _one_line_error(code, err, exc, "a.png", "readable")
    # a missing image file
    (root / "img" / "a.png").unlink()
    code, _, err, exc = _run("preview", clean, "--image-ids", "1,2", "-o", out)
    _one_line_error(code, err, exc, "a.png", "no such file")
    # VOC fixture has no JPEGImages at all
    code, _, err, exc = _run("preview", str(VOC_DIR), "-o", out)
    _one_line_error(code, err, exc, "JPEGImages")
    assert not Path(out).exists()


def test_cli_bad_arguments(uniform_coco: Path, tmp_path: Path) -> None:
    clean, noisy = str(uniform_coco / "clean.json"), str(uniform_coco / "noisy.json")
    out = str(tmp_path / "x.png")
    code, _, err, _ = _run("preview", clean, noisy, "--eta", "0.1", "-o", out)
    assert code == 2 and "not both" in err
    code, _, err, exc = _run("preview", clean, "--image-ids", "99", "-o", out)
    _one_line_error(code, err, exc, "'99'", "clean.json")
    code, _, err, exc = _run("preview", clean, "--class-names", "a,b", "--eta", "0.1", "-o", out)
    assert code == 0  # one category, extra names are ignored
    other = tmp_path / "other.json"
    doc = json.loads(Path(noisy).read_text())
    doc["annotations"][0]["id"] = 11
    other.write_text(json.dumps(doc))
    code, _, err, exc = _run("preview", clean, str(other), "-o", out)
    _one_line_error(code, err, exc, "record 10", "other.json", "missing")
    code, _, err, exc = _run("iou-hist", clean, str(other), "-o", out)
    _one_line_error(code, err, exc, "record 10", "other.json")
    code, _, err, _ = _run("iou-hist", clean, "-o", out)
    assert code == 2 and "at least one NOISY" in err
    code, _, err, exc = _run("iou-hist", clean, noisy, "--label", "a", "--label", "b", "-o", out)
    _one_line_error(code, err, exc, "labels")


def _preview_of(
    coco: Path, noisy_doc: dict[str, Any], tmp_path: Path
) -> tuple[Any, Any, np.ndarray, Callable[[float, float], tuple[int, int]]]:
    """Preview image 1 of ``coco/clean.json`` against ``noisy_doc``: the figure, its axes,
    the PNG's pixels and a map from image coordinates to PNG pixels."""
    (tmp_path / "noisy_doc.json").write_text(json.dumps(noisy_doc))
    out = tmp_path / "preview.png"
    fig = preview_annotations(coco / "clean.json", tmp_path / "noisy_doc.json",
                              image_ids=[1], output=out, tile_size=300)  # fmt: skip
    png = np.asarray(Image.open(out).convert("RGB"))
    ax = fig.axes[0]
    s = ax.noisybox_scale

    def at(x: float, y: float) -> tuple[int, int]:
        return _png_point(ax, x * s, y * s, png.shape[0])

    return fig, ax, png, at


def test_dropped_and_extra_boxes_drawn_apart(uniform_coco: Path, tmp_path: Path) -> None:
    from noisybox.viz.draw import DROPPED_STYLE, EXTRA_STYLE

    doc = json.loads((uniform_coco / "clean.json").read_text())
    doc["annotations"] = [doc["annotations"][1]]  # record 10 (image 1) dropped
    doc["annotations"].append({"id": 30, "image_id": 1, "category_id": 1,
                               "bbox": [140, 10, 50, 40], "area": 1.0, "iscrowd": 0})  # fmt: skip
    # as corrupt --missing/--extra writes it: the provenance says records may differ
    doc["info"] = {"noisybox": {"eta_w": 0.0, "annotation_noise": {"missing": {"rate": 0.5}}}}
    fig, ax, png, at = _preview_of(uniform_coco, doc, tmp_path)
    x1, y1, x2, y2 = CLEAN_BOX
    assert _near(png, at(x1 + 1, y1 + 1), DROPPED_STYLE.color)  # the dropped clean box
    assert not _near(png, at(x1 + 1, (y1 + y2) / 2), CLEAN_STYLE.color, r=2)
    assert _near(png, at(141, 11), EXTRA_STYLE.color)  # the extra box, top-left corner
    texts = [t.get_text() for t in ax.texts]
    assert "thing (dropped)" in texts and "extra thing" in texts
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "dropped" in labels and "extra" in labels


def test_relocated_box_drawn_apart_with_an_arrow(uniform_coco: Path, tmp_path: Path) -> None:
    from matplotlib.patches import FancyArrowPatch

    from noisybox.viz.draw import NOISY_STYLE, RELOCATED_STYLE

    # as corrupt --relocate writes it: record 10 keeps its id and class, its box is new
    doc = json.loads((uniform_coco / "noisy.json").read_text())
    doc["info"] = {"noisybox": {"eta_w": 0.0, "annotation_noise": {
        "relocate": {"rate": 0.5, "seed": [0, 4]}, "relocated_records": [10]}}}  # fmt: skip
    fig, ax, png, at = _preview_of(uniform_coco, doc, tmp_path)
    s = ax.noisybox_scale
    x1, y1, x2, y2 = NOISY_BOX
    assert _near(png, at(x2 - 1, y2 - 1), RELOCATED_STYLE.color)  # the new box, cyan
    assert not _near(png, at(x2 - 1, (y1 + y2) / 2), NOISY_STYLE.color, r=2)  # not magenta
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 1  # from the clean box's centre to the new one's
    (ax0, ay0), (ax1, ay1) = arrows[0]._posA_posB  # type: ignore[attr-defined]
    cx, cy = (CLEAN_BOX[0] + CLEAN_BOX[2]) / 2, (CLEAN_BOX[1] + CLEAN_BOX[3]) / 2
    assert (ax0, ay0) == pytest.approx((cx * s, cy * s))
    assert (ax1, ay1) == pytest.approx(((x1 + x2) / 2 * s, (y1 + y2) / 2 * s))
    texts = [t.get_text() for t in ax.texts]
    iou = 60 * 80 / (100 * 80 + 120 * 110 - 60 * 80)  # clean vs new box, by hand: 0.29
    assert f"relocated, IoU {iou:.2f}" in texts
    assert "mean IoU" not in ax.get_title()  # no jittered box left on the image
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "relocated (arrow from clean box)" in labels
    assert "relocate=0.5" in fig.get_suptitle()


def test_preview_of_a_corrupt_output_with_annotation_noise(shapes: Path, tmp_path: Path) -> None:
    corrupt_annotations(shapes, tmp_path / "n.json", eta=0.1, seed=2, missing=0.3, extra=0.3,
                        class_flip=0.3, relocate=0.3)  # fmt: skip
    code, _, stderr, exc = _run("preview", str(shapes), str(tmp_path / "n.json"),
                                "-o", str(tmp_path / "g.png"), "--num-images", "4")  # fmt: skip
    assert code == 0 and exc is None, stderr
    fig = preview_annotations(shapes, tmp_path / "n.json", num_images=8)
    assert "missing=0.3" in fig.get_suptitle() and "extra=0.3" in fig.get_suptitle()
    assert "relocate=0.3" in fig.get_suptitle()
    tags = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("relocated, IoU") for t in tags)
