"""``gconv train / predict / explain --images``: a folder to a model directory, predictions in a
fresh process equal to the training run's, one overlay per image, one line per user error."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from image_data import write_digit_folder
from PIL import Image

from gconv.cli import main, run
from gconv.image import class_maps, load_model
from gconv.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_a_self_describing_model_directory_and_learns(trained):
    folder, model_dir, metrics = trained
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["kind"], config["classes"], config["color_mode"]) == (
        "image", ["0", "1", "7"], "grayscale",
    )  # fmt: skip
    assert config["image_size"] == [16, 16] and config["normalization"]["source"] == "train"
    assert config["model"]["kwargs"]["blocks"] == [1, 2, 2]
    assert set(load_checkpoint(model_dir / "model_0" / "best.pt")) >= {"model"}  # weights_only
    # above chance (1/3) on the 6 held-out test digits, and on validation
    assert metrics["test_accuracy"] >= 2 / 3 and metrics["val_accuracy"] >= 2 / 3
    assert metrics["skipped"][0]["path"].endswith("broken.png")
    rows = _rows(model_dir / "predictions.csv")
    assert len(rows) == 61 and rows[-1]["error"] and rows[-1]["class"] == ""
    assert {r["split"] for r in rows[:-1]} == {"train", "val", "test"}


def test_predict_in_a_fresh_process_equals_the_training_predictions(trained, tmp_path):
    folder, model_dir, _ = trained
    preds = tmp_path / "preds.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "gconv", "predict", "--model-path", str(model_dir),
         "--images", str(folder), "--preds-path", str(preds)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"1 of 61 images could not be read: see the 'error' column of {preds}" in done.stdout
    predicted = {r["path"]: r for r in _rows(preds)}
    training = _rows(model_dir / "predictions.csv")
    test_rows = [r for r in training if r["split"] == "test"]
    assert len(test_rows) == 6
    columns = ["class", "prob_0", "prob_1", "prob_7"]
    for row in training:  # the test split, and every other file, exactly as written in training
        assert [predicted[row["path"]][c] for c in columns] == [row[c] for c in columns]
    assert predicted[str(folder / "7" / "broken.png")]["error"]


def test_python_api_predicts_a_folder_as_columns(trained):
    folder, model_dir, _ = trained
    model = load_model(model_dir)
    table = model.predict(folder / "1")
    assert list(table) == ["path", "class", "prob_0", "prob_1", "prob_7", "error"]
    probs = torch.tensor(
        [table[c].tolist() for c in ("prob_0", "prob_1", "prob_7")], dtype=torch.float64
    )
    assert torch.allclose(probs.sum(0), torch.ones(20, dtype=torch.float64))
    assert (table["class"] == "1").mean() > 0.5


def test_explain_writes_one_labelled_overlay_per_image(trained, tmp_path):
    folder, model_dir, _ = trained
    out = tmp_path / "explained"
    summary = run(["explain", "--model-path", str(model_dir), "--images", str(folder / "7"),
                   "--output-dir", str(out)])  # fmt: skip
    assert summary == {"images": 21, "failed": 1, "method": "gradcam", "output_dir": out}
    rows = _rows(out / "explanations.csv")
    pictures = sorted(p.name for p in out.glob("*.png"))
    assert pictures == sorted(r["overlay"] for r in rows if not r["error"]) and len(pictures) == 20
    assert Image.open(out / pictures[0]).size[0] > 100  # a figure, not the 28-pixel digit
    model = load_model(model_dir)
    x, _ = model.read([folder / "7" / "000.png"])
    heatmap = class_maps(model, x)
    assert heatmap.shape == (1, 16, 16) and 0 <= heatmap.min() and heatmap.max() <= 1


def test_a_grey_digit_given_to_the_model_in_colour_is_converted(trained, tmp_path):
    folder, model_dir, _ = trained
    Image.open(folder / "0" / "000.png").convert("RGB").save(tmp_path / "rgb.png")
    table = load_model(model_dir).predict([folder / "0" / "000.png", tmp_path / "rgb.png"])
    assert table["prob_0"][0] == table["prob_0"][1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--conv", "gcn"], "--conv is a molecule option; --images trains an image model"),
        (["--target-columns", "y"], "--target-columns is a molecule option"),
        (["--color-mode", "grayscale", "--model", "resnet18"], "takes RGB images"),
    ],
)
def test_bad_flag_combinations_are_argparse_errors(argv, expected, digit_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--images", str(digit_folder), *argv])
    assert exit_info.value.code == 2 and expected in capsys.readouterr().err


def test_image_options_need_images(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--image-size", "32"])
    assert "--image-size is an image option: give the folder with --images DIR" in (
        capsys.readouterr().err
    )


def test_folder_errors_end_the_command_with_one_line(tmp_path, digit_folder):
    write_digit_folder(digit_folder, digits=(2,), per_class=2, mode="RGB")
    with pytest.raises(SystemExit) as exit_info:
        run(["train", "--images", str(digit_folder), "-o", str(tmp_path / "m"), "--quiet"])
    assert str(exit_info.value.code).startswith(f"error: {digit_folder} mixes grey and colour")


def test_a_model_directory_is_read_by_its_kind(trained_copy, tmp_path):
    folder, model_dir = trained_copy
    with pytest.raises(SystemExit) as exit_info:
        run(["predict", "--model-path", str(model_dir), "--test-path", "x.csv"])
    assert "holds an image model: give its inputs as --images DIR, not --test-path" in str(
        exit_info.value.code
    )
    config = json.loads((model_dir / "config.json").read_text())
    config["image_size"] = [20, 20]  # not the size the network takes
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        run(["predict", "--model-path", str(model_dir), "--images", str(folder),
             "--preds-path", str(tmp_path / "p.csv")])  # fmt: skip
    assert "the model takes inputs [1, 16, 16], but color_mode 'grayscale' and image_size" in str(
        exit_info.value.code
    )


def test_resume_continues_the_run_and_refuses_other_data(trained_copy, tmp_path):
    folder, model_dir = trained_copy
    common = ["train", "--images", str(folder), "-o", str(model_dir), "--image-size", "16",
              "--batch-size", "16", "--quiet", "--resume"]  # fmt: skip
    metrics = run([*common, "--epochs", "13"])
    assert metrics["epochs"] == 13
    other = tmp_path / "other"
    write_digit_folder(other, per_class=12)
    with pytest.raises(SystemExit) as exit_info:
        run([*common[:2], str(other), *common[3:], "--epochs", "14"])
    assert str(exit_info.value.code).startswith("error: --resume: ")


def test_cam_on_the_flatten_head_cnn_is_one_line_naming_the_fix(trained, tmp_path):
    folder, model_dir, _ = trained
    with pytest.raises(SystemExit) as exit_info:
        run(["explain", "--model-path", str(model_dir), "--images", str(folder / "0" / "000.png"),
             "--output-dir", str(tmp_path / "e"), "--method", "cam"])  # fmt: skip
    message = str(exit_info.value.code)
    assert message.startswith("error: --method cam cannot explain this model: CAM needs")
    assert "use GradCAM instead" in message and "\n" not in message
