"""examples/mnist_cnn.py: a smoke run on a slice of the data, and the full run against its target."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from gconv.data.augment import translate
from gconv.train import Trainer, load_checkpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist_cnn.py"
# the lowest test accuracy seen over seeds 0-2: benchmarks/results.json has 0.993 / 0.995 / 0.991
# (2 threads, the Trainer's NHWC layout); seed 2 gave 0.990 in NCHW, before channels_last="auto"
WORST_SEED = 0.990
MARGIN = 0.003


def load_example():
    spec = importlib.util.spec_from_file_location("mnist_cnn_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_every_artefact(tmp_path):
    example = load_example()
    metrics = example.main(["--limit", "300", "--epochs", "1", "--out", str(tmp_path), "--quiet"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    assert {"test_acc", "epochs", "seconds_per_epoch", "params"} <= saved.keys()
    assert saved["epochs"] == 1 and saved["n_train"] == 300 and saved["n_test"] == 1000
    assert saved["params"] > 0 and 0.0 <= saved["test_acc"] <= 1.0
    for name in ("history.png", "predictions.png", "best.pt", "last.pt"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1


def test_resume_continues_the_run(tmp_path):
    example = load_example()
    common = ["--limit", "200", "--out", str(tmp_path), "--quiet", "--model", "lecture"]
    example.main([*common, "--epochs", "1"])
    metrics = example.main([*common, "--epochs", "2", "--resume"])
    assert metrics["epochs"] == 2


def test_unknown_dataset_is_refused(capsys):
    example = load_example()
    with pytest.raises(SystemExit):
        example.main(["--dataset", "cifar"])
    assert "invalid choice: 'cifar'" in capsys.readouterr().err


def test_validation_split_comes_from_the_training_digits(tmp_path):
    metrics = load_example().main(
        ["--limit", "300", "--val", "100", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    )
    assert metrics["n_train"] == 200 and metrics["n_val"] == 100 and metrics["n_test"] == 1000
    assert 0.0 <= metrics["val_acc"] <= 1.0
    assert metrics["augment"] == "affine" and metrics["label_smoothing"] == 0.1
    assert metrics["tta"] == 9 and 0.0 <= metrics["val_acc_last_epoch"] <= 1.0


def test_lecture_recipe_stays_the_notes_plain_one(tmp_path):
    args = load_example().parse_args(["--model", "lecture"])
    assert (args.lr, args.epochs, args.augment, args.label_smoothing) == (1e-3, 15, "none", 0.0)
    assert args.tta == 1


def test_test_time_views_average_the_softmax_of_shifted_copies():
    example = load_example()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    trainer = Trainer(model, device="cpu", progress=False)
    x = torch.rand(5, 1, 6, 6)
    views = example.TTA_VIEWS[9]
    assert len(views) == 9 and len(set(views)) == 9 and (0, 0) in views
    assert set(example.TTA_VIEWS[5]) < set(views) and example.TTA_VIEWS[1] == [(0, 0)]
    expected = torch.stack(
        [model(translate(x, torch.tensor([[dy, dx]]).expand(5, 2))).softmax(1) for dy, dx in views]
    ).mean(0)
    got = example.predict_averaged(trainer, x, views, batch_size=2)
    torch.testing.assert_close(got, expected)
    plain = example.predict_averaged(trainer, x, [(0, 0)])
    torch.testing.assert_close(plain, model(x).softmax(1))
    # one shifted view is the model on the image moved by one pixel, not the image itself
    down = example.predict_averaged(trainer, x, [(1, 0)])
    torch.testing.assert_close(
        down, model(torch.roll(x, 1, dims=2).index_fill(2, torch.tensor([0]), 0)).softmax(1)
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_full_run_reaches_target(tmp_path, seed):
    """The default recipe on the 1,000 held-out digits of two seeds' splits.

    benchmarks/results.json (seeds 0-2) has the distribution; the threshold is its worst seed
    minus MARGIN, 0.3 points (3 digits of 1,000): another CPU's rounding changes the training
    path, and the seed-to-seed sd of about 0.2 points is mostly that of a 1,000-digit test set.
    """
    metrics = load_example().main(["--seed", str(seed), "--out", str(tmp_path), "--quiet"])
    assert metrics["test_acc"] >= WORST_SEED - MARGIN


def test_mlp_baseline_runs_through_the_same_loop(tmp_path):
    metrics = load_example().main(
        ["--model", "mlp", "--limit", "200", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    )
    assert metrics["model"] == "mlp"
    assert metrics["params"] == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
