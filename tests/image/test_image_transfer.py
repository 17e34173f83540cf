"""Colour photographs (scikit-image's samples as JPEG files of several sizes) and the torchvision
backbones with local weights: read, trained, saved, predicted and explained like the digits."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torchvision
from image_data import write_photo_folder

from gconv.cli import run
from gconv.data import read_image_folder
from gconv.image import load_model

pytest.importorskip("skimage")


def test_colour_jpegs_of_several_sizes_are_resized_to_the_common_one(tmp_path):
    folder = write_photo_folder(tmp_path / "photos")
    data = read_image_folder(folder, split_sizes=(0.5, 0.25, 0.25), verbose=False)
    assert data.color_mode == "rgb" and data.classes == ["cat", "coffee"]
    assert data.images.shape[:2] == (12, 3) and max(data.image_size) <= 64
    assert len(data.mean_std()[0]) == 3


def test_resnet18_with_local_weights_round_trips(tmp_path):
    folder = write_photo_folder(tmp_path / "photos", per_class=8)
    weights = tmp_path / "resnet18.pth"  # a torchvision state-dict file, as downloaded
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out = tmp_path / "model"
    metrics = run(["train", "--images", str(folder), "--model", "resnet18", "--weights-path",
                   str(weights), "--image-size", "32", "--epochs", "2", "--batch-size", "8",
                   "--split-sizes", "0.5", "0.25", "0.25", "-o", str(out), "--quiet"])  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == {
        "class": "TransferModel",
        "kwargs": {"arch": "resnet18", "num_classes": 2, "mode": "feature_extraction"},
    }
    assert config["normalization"]["source"] == "imagenet" and config["channels"] == 3
    model = load_model(out)
    table = model.predict(folder)
    with open(out / "predictions.csv", newline="") as f:
        training = {r["path"]: r for r in csv.DictReader(f)}
    for i, path in enumerate(table["path"]):
        assert table["class"][i] == training[path]["class"]
    assert metrics["n_test"] == 4
    summary = run(["explain", "--model-path", str(out), "--images", str(folder / "cat"),
                   "--output-dir", str(tmp_path / "maps"), "--method", "cam"])  # fmt: skip
    assert summary["failed"] == 0 and len(list((tmp_path / "maps").glob("*.png"))) == 8
