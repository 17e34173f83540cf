"""``gconv explain``: per-atom scores of a model directory, one line per atom, bad rows kept, the
ensemble's scores complete where the method is (integrated gradients: they add up to the
prediction minus the zero-feature baseline's, in the target's units)."""

from __future__ import annotations

import csv

import pytest
import torch
from torch_geometric.data import Batch

from gconv.cli import run
from gconv.molecule import atom_scores, load_model
from gconv.molecule.explanation import _target_columns

SMILES = ["CCO", "c1ccccc1O", "C1CC", "CC(=O)Nc1ccc(O)cc1"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_explain_writes_one_line_per_atom_and_keeps_unreadable_molecules(
    regression_dir, tmp_path, capsys
):
    out = tmp_path / "explained"
    summary = run(["explain", "--model-path", str(regression_dir), "--smiles", *SMILES,
                   "--output-dir", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert f"explained with {summary['method']}" in printed and "1 could not be read" in printed
    rows = _rows(out / "atoms.csv")
    assert list(rows[0]) == ["molecule", "smiles", "atom_index", "element", "size", "error"]
    assert [r["molecule"] for r in rows] == ["0"] * 3 + ["1"] * 7 + ["2"] + ["3"] * 11
    assert [r["element"] for r in rows[:3]] == ["C", "C", "O"]
    bad = rows[10]
    assert bad["smiles"] == "C1CC" and bad["size"] == "" and "C1CC" in bad["error"]
    assert all(r["error"] == "" and r["size"] != "" for r in rows if r["molecule"] != "2")
    assert sorted(p.name for p in out.glob("*.png")) == [f"molecule_{k}.png" for k in (0, 1, 3)]


def test_regression_scores_add_up_to_the_prediction_minus_the_baseline(regression_dir):
    model = load_model(regression_dir)
    graphs, _, _ = model.featurize(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"])
    scores, method, _ = atom_scores(model, graphs)
    assert method == "IntegratedGradients"  # the example's MLP head
    batch = Batch.from_data_list(graphs)
    empty = batch.clone()
    empty.x = torch.zeros_like(batch.x)
    with torch.no_grad():
        difference = torch.stack(
            [m.eval()(batch)[:, 0] - m(empty)[:, 0] for m in model.members]
        ).mean(0)
    expected = (difference * model.target_scaler.std[0]).double()
    total = torch.tensor([s[:, 0].sum() for s in scores])
    torch.testing.assert_close(total, expected, rtol=0.05, atol=0.02)


@pytest.mark.parametrize("fixture", ["classification_dir", "multiclass_dir"])
def test_classifiers_get_one_score_column_per_task_from_a_test_file(fixture, request, tmp_path):
    model_dir = request.getfixturevalue(fixture)
    test = tmp_path / "new.csv"
    test.write_text("name,smiles\nethanol,CCO\nphenol,c1ccccc1O\n")
    run(["explain", "--model-path", str(model_dir), "--test-path", str(test),
         "--output-dir", str(tmp_path / "e"), "--no-pictures"])  # fmt: skip
    rows = _rows(tmp_path / "e" / "atoms.csv")
    tasks = load_model(model_dir).tasks.names
    assert list(rows[0])[4:] == [*tasks, "error"] and len(rows) == 3 + 7
    assert all(float(r[t]) == float(r[t]) for r in rows for t in tasks)  # numbers, no NaN
    assert not list((tmp_path / "e").glob("*.png"))


def test_explain_needs_smiles_or_a_test_file_not_both(regression_dir, tmp_path):
    for extra in ([], ["--smiles", "CCO", "--test-path", str(tmp_path / "x.csv")]):
        with pytest.raises(SystemExit) as exit_info:
            run(["explain", "--model-path", str(regression_dir), "--output-dir",
                 str(tmp_path / "e"), *extra])  # fmt: skip
        message = str(exit_info.value.code)  # SystemExit("error: ...") exits with status 1
        assert message.startswith("error: give the molecules as --smiles S [S ...] or as")


def test_multiclass_explains_the_logit_of_each_molecules_predicted_class(multiclass_dir):
    model = load_model(multiclass_dir)
    graphs, _, _ = model.featurize(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCCCCCCC"])
    probabilities, _ = model.predict_graphs(graphs)  # [N, T, C]
    (columns,) = _target_columns(model, graphs)  # one task
    assert columns.tolist() == probabilities[:, 0].argmax(-1).tolist()
