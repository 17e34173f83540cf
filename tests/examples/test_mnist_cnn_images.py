"""examples/mnist_cnn.py --images DIR: the example's recipe on your own folder, through the
library's image tool (a model directory that `gconv predict` reads)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gconv.data import mnist5k
from gconv.image import load_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist_cnn.py"


def load_example():
    spec = importlib.util.spec_from_file_location("mnist_cnn_images_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_images_trains_a_model_directory_on_a_folder(tmp_path):
    (x, y), _ = mnist5k()
    for digit in (2, 5):
        (tmp_path / "digits" / f"d{digit}").mkdir(parents=True)
        for k, image in enumerate(x[y == digit][:10, 0].numpy()):
            pixels = (image * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "digits" / f"d{digit}" / f"{k}.png")
    out = tmp_path / "run"
    metrics = load_example().main(
        ["--images", str(tmp_path / "digits"), "--epochs", "2", "--batch-size", "8",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert metrics["classes"] == ["d2", "d5"] and metrics["epochs"] == 2
    assert json.loads((out / "config.json").read_text())["kind"] == "image"
    assert load_model(out).image_size == (28, 28)


def test_images_refuses_the_other_recipes(capsys):
    with pytest.raises(SystemExit):
        load_example().parse_args(["--images", "x", "--model", "lecture"])
    assert "--images trains the default (bn) recipe" in capsys.readouterr().err
