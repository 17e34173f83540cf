"""The model directory predicts alone: in a fresh process, elsewhere, without the training file,
``gconv predict`` equals the training-time predictions; a directory from another featuriser or
format version, or with a part missing, is refused with one line that says which."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from molecule_data import molecules, read_csv, write_csv

from gconv.cli import run
from gconv.molecule import MoleculeModel, UsageError, load_model, read_config

ROOT = Path(__file__).resolve().parents[2]


def _new_csv(path: Path) -> Path:
    """The training molecules in another order, with other columns, and two unreadable rows."""
    rows = [{"name": r["id"], "smiles": r["smiles"]} for r in molecules()][::-1]
    rows.insert(3, {"name": "bad", "smiles": "C1CC"})
    rows.append({"name": "empty", "smiles": ""})
    return write_csv(path, rows)


def _fresh_predict(model_dir: Path, workdir: Path, *extra: str) -> list[dict[str, str]]:
    """``python -m gconv predict`` in a new process whose working directory is ``workdir``."""
    _new_csv(workdir / "new.csv")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "gconv", "predict", "--model-path", str(model_dir)]
    command += ["--test-path", "new.csv", "--preds-path", "out.csv", "--device", "cpu", *extra]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        f"2 of {len(molecules()) + 2} rows could not be read: see the 'error' column of out.csv"
    ]
    return read_csv(workdir / "out.csv")


def _training_predictions(model_dir: Path, column: str) -> dict[str, float]:
    return {r["smiles"]: float(r[column]) for r in read_csv(model_dir / "predictions.csv")}


@pytest.mark.parametrize("kind", ["regression", "classification", "multiclass", "atomwise"])
def test_fresh_process_predictions_equal_training_time_predictions(
    kind, request, tmp_path, data_csv
):
    model_dir = request.getfixturevalue(f"{kind}_dir")
    assert not (model_dir.parent / "train.csv").exists()  # the training file is gone
    rows = _fresh_predict(model_dir, tmp_path)
    config = read_config(model_dir)
    tasks = config["tasks"]["names"]
    good = [r for r in rows if not r["error"]]
    assert len(good) == len(molecules())
    assert rows[3]["name"] == "bad" and rows[3]["error"].startswith("invalid SMILES 'C1CC'")
    assert rows[-1]["name"] == "empty" and rows[-1]["error"]
    for task in tasks:
        assert rows[3][task] == "" and rows[-1][task] == ""
        if kind == "multiclass":
            for k in range(config["tasks"]["num_classes"]):
                trained = _training_predictions(model_dir, f"{task}_class_{k}")
                for r in good:
                    assert abs(float(r[f"{task}_class_{k}"]) - trained[r["smiles"]]) <= 1e-5
            trained = _training_predictions(model_dir, f"{task}_pred")
            assert all(int(r[task]) == trained[r["smiles"]] for r in good)
        else:
            trained = _training_predictions(model_dir, f"{task}_pred")
            for r in good:
                assert abs(float(r[task]) - trained[r["smiles"]]) <= 1e-5
    if kind == "regression":  # an ensemble of two: the spread and the interval, equal too
        for column in ("size_std", "size_lo", "size_hi"):
            trained = _training_predictions(model_dir, column)
            assert all(abs(float(r[column]) - trained[r["smiles"]]) <= 1e-5 for r in good)
        widths = {round(float(r["size_hi"]) - float(r["size_lo"]), 5) for r in good}
        assert len(widths) > len(good) // 2  # normalised: a width per molecule
        assert list(rows[0]) == [
            "name",
            "smiles",
            "size",
            "size_std",
            "size_lo",
            "size_hi",
            "error",
        ]


def test_config_records_what_prediction_needs(regression_dir):
    config = json.loads((regression_dir / "config.json").read_text())
    assert config["format"] == "gconv-model-directory" and config["format_version"] == 1
    assert config["kind"] == "molecule" and config["gconv_version"]
    assert config["featurizer"]["atom_version"] and len(config["featurizer"]["table_sha256"]) == 16
    assert config["tasks"] == {"names": ["size"], "type": "regression", "num_classes": None}
    assert config["model"]["class"] == "GNN" and config["model"]["kwargs"]["descriptor_dim"] > 0
    assert (
        config["readout"]["name"] in ("atomwise", "meanmax")
        and config["readout"]["option"] == "auto"
    )
    assert config["descriptors"]["names"] and config["members"] == [
        "model_0/best.pt",
        "model_1/best.pt",
    ]
    assert config["training"]["ensemble_size"] == 2 and config["smiles_column"] == "smiles"


def test_weights_and_scalers_are_loaded_weights_only(regression_dir, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_model(regression_dir)
    assert calls and all(flag is True for flag in calls)  # scalers.pt and both members


def test_python_api_predicts_a_list_of_smiles(regression_dir):
    model = load_model(regression_dir)
    assert isinstance(model, MoleculeModel) and len(model.members) == 2
    table = model.predict(["CCO", "not a smiles", "CCCCN"])
    assert list(table) == ["smiles", "size", "size_std", "size_lo", "size_hi", "error"]
    assert np.isnan(table["size"][1]) and "not a smiles" in table["error"][1]
    assert table["error"][0] == "" and np.isfinite(table["size"][[0, 2]]).all()
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(table)
    assert frame.shape == (3, 6) and frame["size"].notna().sum() == 2


def test_a_directory_with_a_constant_interval_still_predicts_it(regression_dir, tmp_path):
    # what gconv 0.2 wrote before the normalised interval: {"method": "conformal",
    # "half_width": [...]} and no calibration.pt; it predicts value +- half_width, as before
    model_dir = _copy(regression_dir, tmp_path)
    (model_dir / "calibration.pt").unlink()
    old = {"method": "conformal", "confidence": 0.9, "half_width": [1.25], "n": [5],
           "guaranteed": [False]}  # fmt: skip
    _edit_config(model_dir, lambda c: c.update(calibration=old))
    model = load_model(model_dir)
    assert model.reference is None and not model.normalized
    table = model.predict(["CCO", "CCCCN"])
    assert list(table) == ["smiles", "size", "size_std", "size_lo", "size_hi", "error"]
    assert np.allclose(table["size_hi"] - table["size"], 1.25)
    assert np.allclose(table["size"] - table["size_lo"], 1.25)


def test_reference_embeddings_round_trip_weights_only(regression_dir):
    model = load_model(regression_dir)
    stored = torch.load(regression_dir / "calibration.pt", weights_only=True)
    assert len(model.reference) == len(model.members) == len(stored["reference"])
    metrics = json.loads((regression_dir / "metrics.json").read_text())
    for reference in stored["reference"]:
        assert reference.dtype == torch.float32
        assert reference.shape[0] == metrics["n_train"] == model.calibration["n_reference"]
    # member k's reference rows are its embeddings of training molecules: the first training
    # molecule of predictions.csv is among them (distance 0 to its nearest reference row)
    first = next(r["smiles"] for r in read_csv(regression_dir / "predictions.csv")
                 if r["split"] == "train")  # fmt: skip
    graphs, _, _ = model.featurize([first])
    for k, reference in enumerate(model.reference):
        assert torch.equal(reference, stored["reference"][k])
        distance = torch.cdist(model.embed(graphs, member=k).double(), reference.double())
        assert float(distance.min()) < 1e-5


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / "calibration.pt").unlink(), "missing calibration.pt"),
        (lambda d: torch.save({"reference": [torch.zeros(3, 5)]}, d / "calibration.pt"),
         "one [R, D] reference embedding per member (2)"),
        (lambda d: torch.save({"reference": [torch.zeros(3, 5)] * 2}, d / "calibration.pt"),
         "but the model embeds in"),
        (lambda d: _edit_config(d, lambda c: c["calibration"].pop("quantile")),
         "the normalised calibration lacks ['quantile']"),
    ],
    ids=["missing", "members", "width", "entry"],
)  # fmt: skip
def test_a_damaged_calibration_is_refused_with_one_line(
    regression_dir, tmp_path, capsys, damage, expected
):
    model_dir = _copy(regression_dir, tmp_path)
    damage(model_dir)
    assert expected in _predict_error(model_dir, tmp_path, capsys)


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    return copy


def _edit_config(model_dir: Path, edit) -> None:
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def _predict_error(model_dir: Path, tmp_path: Path, capsys) -> str:
    test = write_csv(tmp_path / "t.csv", [{"smiles": "CCO"}])
    argv = ["predict", "--model-path", str(model_dir), "--test-path", str(test)]
    with pytest.raises(SystemExit) as exit_info:
        run([*argv, "--preds-path", str(tmp_path / "p.csv")])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
    return message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["featurizer"].update(atom_version="gconv-mol-v0"),
            "trained with featuriser gconv-mol-v0/",
        ),
        (
            lambda c: c["featurizer"].update(table_sha256="0123456789abcdef"),
            "feature table 0123456789abcdef",
        ),
        (lambda c: c.update(format_version=2), "model-directory format 2"),
        (lambda c: c.update(format="something else"), "not a gconv model directory"),
        (lambda c: c.pop("tasks"), "lacks the entry 'tasks'"),
        (lambda c: c["model"]["kwargs"].update(hidden_channels=8), "does not fit the model"),
        (lambda c: c["descriptors"]["names"].append("NoSuchDescriptor"), "NoSuchDescriptor"),
        (lambda c: c["members"].append("model_9/best.pt"), "missing model_9/best.pt"),
    ],
    ids=[
        "featurizer-version",
        "feature-table",
        "format-version",
        "format",
        "config-entry",
        "weights-shape",
        "descriptor",
        "member-file",
    ],
)
def test_a_tampered_directory_is_refused_with_one_line(
    regression_dir, tmp_path, capsys, edit, expected
):
    model_dir = _copy(regression_dir, tmp_path)
    _edit_config(model_dir, edit)
    message = _predict_error(model_dir, tmp_path, capsys)
    assert expected in message
    with pytest.raises(UsageError, match="."):  # the Python API refuses it the same way
        load_model(model_dir)


def test_missing_directory_config_or_scalers_are_one_line(regression_dir, tmp_path, capsys):
    assert "does not exist" in _predict_error(tmp_path / "nothing", tmp_path, capsys)
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in _predict_error(tmp_path / "empty", tmp_path, capsys)
    model_dir = _copy(regression_dir, tmp_path)
    (model_dir / "scalers.pt").unlink()
    assert "missing scalers.pt" in _predict_error(model_dir, tmp_path, capsys)
    (model_dir / "model_0" / "best.pt").write_bytes(b"not a checkpoint")
    (model_dir / "scalers.pt").write_bytes(b"")
    assert "could not read checkpoint" in _predict_error(model_dir, tmp_path, capsys)
