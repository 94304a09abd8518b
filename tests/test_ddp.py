"""DDP through ``torchrun``: two CPU processes over gloo train one run and agree on it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from noisybox.data import make_shapes_dataset
from noisybox.engine import load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_torchrun_two_cpu_processes_over_gloo(tmp_path) -> None:
    noisybox_exe = shutil.which("noisybox")
    if noisybox_exe is None:
        pytest.skip("the noisybox console script is not installed")
    shapes = make_shapes_dataset(tmp_path / "shapes", num_train=8, num_val=2, image_size=64)
    config = {
        "train_annotations": str(shapes.train_annotations),
        "out_dir": str(tmp_path / "run"),
        "detector": "fcos",
        "loss": "alpha-giou",
        "epochs": 2,
        "batch_size": 2,
        "image_size": 64,
        "fpn_channels": 64,
        "workers": 0,
        "device": "cpu",
    }
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "--no-python",
        noisybox_exe,
        "train",
        "--config",
        str(cfg_path),
        "--quiet",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # only rank 0 prints the result
    result = json.loads(proc.stdout)
    assert result["world_size"] == 2
    digests = result["weights_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # both ranks hold the same weights
    # the DistributedSampler split 8 images over 2 ranks: 2 steps of 2 images per epoch
    assert [h["steps"] for h in result["history"]] == [2, 2]
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["epoch"] == 2 and len(state["rng"]) == 2
    assert state["rng"][0]["torch"].ne(state["rng"][1]["torch"]).any()  # per-rank streams
