"""examples/transfer_cam.py: a frozen torchvision backbone learns a head, and CAM draws its maps,
on synthetic STL10 files (torchvision's binary format) and offline on MNIST-5k."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from gconv.train.checkpoint import load_checkpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transfer_cam.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("transfer_cam", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_stl10(root: Path, split: str, n: int, seed: int) -> None:
    """``n`` 96x96 images in STL10's binary layout whose class is their colour (plus noise)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    colours = np.stack([(np.arange(10) * 37 + 60 * c) % 256 for c in range(3)], axis=1)
    images = colours[labels][:, :, None, None] + rng.integers(-20, 21, (n, 3, 96, 96))
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    # torchvision reads [N, 3, 96, 96] column-major images and 1-based labels
    images.clip(0, 255).astype(np.uint8).transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
    (labels + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")


def test_feature_extraction_on_stl10_learns_the_head_only(
    example, resnet_weights, tmp_path, monkeypatch
):
    write_stl10(tmp_path / "data", "train", 120, seed=0)
    write_stl10(tmp_path / "data", "test", 40, seed=1)
    monkeypatch.setattr(torchvision.datasets.STL10, "_check_integrity", lambda self: True)
    out = tmp_path / "run"
    argv = ["--data", "stl10", "--root", str(tmp_path / "data"), "--weights", str(resnet_weights)]
    argv += ["--epochs", "8", "--lr", "1e-2", "--batch-size", "20", "--val", "20"]
    metrics = example.main([*argv, "--explain", "4", "--quiet", "--out", str(out)])
    assert metrics["image_size"] == 96 and metrics["n_train"] == 100 and metrics["n_test"] == 40
    assert metrics["trainable_params"] == 512 * 10 + 10  # the head only
    assert metrics["test_acc"] > 0.3  # ten colours: far above chance (0.1) from frozen features
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "cam.png").stat().st_size > 0 and (out / "history.png").is_file()
    # the restored best epoch kept the loaded backbone exactly
    saved = torch.load(resnet_weights, weights_only=True)
    best = load_checkpoint(out / "best.pt")["model"]
    for name in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        assert torch.equal(best[f"features.{name}"], saved[name])


def test_offline_default_data_runs_and_says_it_is_not_transfer(example, tmp_path, capsys):
    argv = [
        "--epochs",
        "1",
        "--limit",
        "120",
        "--val",
        "40",
        "--explain",
        "4",
        "--batch-size",
        "40",
    ]
    metrics = example.main([*argv, "--out", str(tmp_path)])
    assert metrics["data"] == "mnist5k" and metrics["weights"] is None
    assert metrics["image_size"] == 64  # 28 px digits upsampled for a 32x-downsampling backbone
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert "not transfer learning" in capsys.readouterr().out


def test_errors_name_the_missing_file(example, tmp_path):
    with pytest.raises(SystemExit, match=r"resnet18-f37072fd\.pth"):
        example.main(["--weights", str(tmp_path / "missing.pth"), "--limit", "50", "--val", "10"])
    with pytest.raises(SystemExit, match=r"STL10 not found at .*stl10_binary.*--download"):
        example.main(["--data", "stl10", "--root", str(tmp_path)])
    # present but corrupt (a truncated download): one line naming the file and --download
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    for name in ("train_X.bin", "train_y.bin", "unlabeled_X.bin", "test_X.bin", "test_y.bin"):
        (folder / name).write_bytes(b"\x00" * 100)
    with pytest.raises(SystemExit) as info:
        example.main(["--data", "stl10", "--root", str(tmp_path)])
    message = str(info.value.code)
    assert message.startswith(f"error: STL10 file {folder / 'train_X.bin'} is corrupt")
    assert "--download" in message and "\n" not in message
    with pytest.raises(SystemExit):
        example.parse_args(["--image-size", "16"])


@pytest.mark.parametrize("kind", ["directory", "empty", "truncated", "pickled_model"])
def test_a_bad_weights_file_exits_with_one_line(example, kind, tmp_path, resnet_weights, capsys):
    path = tmp_path / f"{kind}.pth"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":  # an interrupted download
        path.write_bytes(resnet_weights.read_bytes()[:100_000])
    else:  # torch.save(model) instead of torch.save(model.state_dict())
        torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), path)
    expected = {
        "directory": "is a directory, not a weights file: pass the torchvision resnet18",
        "empty": r"is empty \(0 bytes\): fetch it again",
        "truncated": r"cannot be read \(RuntimeError: .*\); truncated or corrupted\?",
        "pickled_model": r"holds a pickled torch.nn.modules.container.Sequential .*state dict",
    }[kind]
    with pytest.raises(
        SystemExit, match=rf"^error: weights.* '{re.escape(str(path))}' {expected}"
    ) as raised:
        example.main(["--weights", str(path), "--limit", "50", "--val", "10", "--quiet"])
    assert "\n" not in str(raised.value.code)
    assert "Traceback" not in capsys.readouterr().err
