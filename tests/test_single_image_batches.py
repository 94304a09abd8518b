"""A batch of one image: the last batch of an epoch, and evaluating a single image (item 4)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from noisybox.cli import main
from noisybox.detectors import build_detector
from noisybox.detectors.registry import PerImageGroupNorm
from noisybox.engine.train import drops_single_image_batch


def test_fcos_with_32_fpn_channels_takes_one_image() -> None:
    """P7 of a 128 px image is 1x1: GroupNorm(32, 32) then holds one value per group."""
    torch.manual_seed(0)
    model = build_detector("fcos", 3, loss="iou", fpn_channels=32, image_size=128, num_convs=1)
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(type(m) is PerImageGroupNorm for m in norms)
    image = torch.rand(3, 64, 64)
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 30.0]]), "labels": torch.tensor([1])}
    losses = model([image], [target])
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        (out,) = model([image])
    assert set(out) == {"boxes", "scores", "labels"}


def test_per_image_group_norm_equals_group_norm_where_torch_accepts_it() -> None:
    torch.manual_seed(1)
    stock = nn.GroupNorm(4, 8)
    nn.init.normal_(stock.weight)
    nn.init.normal_(stock.bias)
    ours = PerImageGroupNorm(4, 8)
    ours.load_state_dict(stock.state_dict())
    x = torch.randn(3, 8, 5, 5)
    assert torch.equal(ours(x), stock(x))
    # one image is normalised exactly as inside a batch (GroupNorm is per image)
    assert torch.equal(ours(x[:1]), stock(x)[:1])
    single = torch.randn(1, 8, 1, 1)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.GroupNorm(8, 8)(single)
    # a group of one value normalises to 0: the output is the bias
    torch.testing.assert_close(
        PerImageGroupNorm(8, 8)(single), torch.zeros_like(single), atol=1e-4, rtol=0
    )


def test_which_last_batches_are_dropped() -> None:
    assert drops_single_image_batch(5, 4) and drops_single_image_batch(9, 2)
    assert not drops_single_image_batch(8, 4) and not drops_single_image_batch(7, 4)
    assert not drops_single_image_batch(5, 1)  # batch_size 1: every batch is one image
    assert not drops_single_image_batch(1, 4)  # the only image is kept
    assert drops_single_image_batch(10, 4, world_size=2)  # 5 per process
    assert not drops_single_image_batch(8, 2, world_size=2)


def test_train_with_a_last_batch_of_one_image(tmp_path: Path) -> None:
    """The issue's command: 5 images, batch 4 -> one batch of 4, the single image dropped;
    the 1-image test set is evaluated; files keep the umask (item 5)."""
    old = os.umask(0o022)
    try:
        ds, out = tmp_path / "ds", tmp_path / "run"
        made = CliRunner().invoke(
            main,
            ["make-dataset", "shapes", str(ds), "--num-train", "5", "--num-val", "1",
             "--image-size", "64"],
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        result = CliRunner().invoke(
            main,
            ["train", "--data", str(ds), "--epochs", "1", "--batch-size", "4", "--image-size",
             "128", "--fpn-channels", "32", "--head-convs", "1", "--workers", "0", "--out",
             str(out), "-q", "--json"],
        )  # fmt: skip
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "result.json").read_text())
    assert record["history"][0]["steps"] == 1
    assert set(record["metrics"]) >= {"ap50", "map"}
    for name in ("last.pt", "result.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644
