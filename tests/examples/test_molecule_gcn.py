"""examples/molecule_gcn.py as a chemprop-grade CLI: quick runs, files written, errors as one line."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "molecule_gcn.py"
QUICK = ["--epochs", "1", "--hidden", "16", "--head-hidden", "16", "--quiet"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("molecule_gcn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _error_line(example, argv, capsys) -> str:
    """Runs the CLI, expects exit with one ``error:`` line (no traceback) and returns it."""
    with pytest.raises(SystemExit) as exit_info:
        example.main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert "Traceback" not in capsys.readouterr().err
    return message


def test_quick_run_writes_metrics_predictions_plot_and_checkpoints(example, tmp_path):
    argv = ["--limit", "60", "--ensemble", "2", "--out", str(tmp_path), *QUICK]
    returned = example.main(argv)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == returned
    required = {"test_rmse", "test_mae", "test_r2", "baseline_mean_rmse", "baseline_fp_rmse"}
    assert required | {"n_train", "n_test", "n_skipped", "skipped", "seed", "seconds"} <= set(
        metrics
    )
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 60
    assert metrics["dataset"] == "chembl_pic50" and metrics["split"] == "scaffold"
    assert metrics["conv"] == "dmpnn" and metrics["ensemble"] == 2
    assert metrics["n_skipped"] == 0 and metrics["skipped"] == []
    assert all(math.isfinite(metrics[k]) for k in ("test_rmse", "baseline_fp_rmse"))
    assert (tmp_path / "parity.png").stat().st_size > 0
    assert (tmp_path / "model_0" / "best.pt").is_file()
    assert (tmp_path / "model_1" / "best.pt").is_file()

    with open(tmp_path / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60
    header = ["smiles", "row", "split", "pIC50_true", "pIC50_pred", "pIC50_std", "pIC50_lo",
              "pIC50_hi", "error"]  # fmt: skip
    assert list(rows[0]) == header and [int(r["row"]) for r in rows] == sorted(
        int(r["row"]) for r in rows
    )  # input order
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    stds = [float(r["pIC50_std"]) for r in rows]
    assert all(s >= 0 for s in stds) and max(stds) > 0  # two members disagree somewhere
    test = [r for r in rows if r["split"] == "test"]
    error = [(float(r["pIC50_pred"]) - float(r["pIC50_true"])) ** 2 for r in test]
    assert math.isclose((sum(error) / len(error)) ** 0.5, metrics["test_rmse"], rel_tol=1e-4)


def _write_csv(path: Path, rows: list[str], header: str = "smi,y") -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_bad_rows_are_printed_and_listed(example, tmp_path, capsys):
    rows = ["CCO,1.0", "C1CC,2.0", "c1ccccc1,3.0", "CCN,", "CCCC,4.0", "CC(=O)O,5.0"]
    rows += [f"{'C' * n}O,{n}" for n in range(3, 17)]  # (n = 2 would repeat CCO)
    csv_path = _write_csv(tmp_path / "mols.csv", rows)
    out = tmp_path / "run"
    metrics = example.main(
        ["--csv", str(csv_path), "--smiles-col", "smi", "--target-col", "y", "--split", "random"]
        + ["--out", str(out), *QUICK]
    )
    assert metrics["n_skipped"] == 1  # C1CC; the NaN label of CCN is kept and masked
    assert metrics["skipped"] == [
        {"row": 1, "smiles": "C1CC", "reason": "invalid SMILES 'C1CC': syntax error"}
    ]
    assert "row 1: C1CC: invalid SMILES 'C1CC': syntax error" in capsys.readouterr().out
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == len(rows) - 1
    assert metrics["tasks"] == ["y"]


# -- issue 22: no silent wrong result from the data ---------------------------------------------
# 24 distinct molecules, a random split: quick, and every part non-empty
MOLECULES = [f"{'C' * n}{end}" for n in range(1, 9) for end in ("O", "N", "Cl")]
RANDOM = ["--split", "random", *QUICK]


def _rows(tmp_path, extra: list[str], header: str = "smiles,y") -> Path:
    rows = [f"{s},{i / 4}" for i, s in enumerate(MOLECULES)] + extra
    return _write_csv(tmp_path / "data.csv", rows, header=header)


def test_conflicting_duplicates_are_one_error_line_naming_the_rows(example, tmp_path, capsys):
    csv_path = _rows(tmp_path, ["CCO,1", "CCO,9", "OCC,1"])  # rows 24-26; "CO" is row 0
    argv = ["--csv", str(csv_path), "--target-col", "y", "--out", str(tmp_path / "run"), *RANDOM]
    message = _error_line(example, argv, capsys)
    assert "'CCO' in rows 3, 24, 25, 26" in message and "'mean'" in message


def test_predictions_list_every_input_row_in_order_with_reasons(example, tmp_path, capsys):
    # duplicates averaged on request; a SMILES with a space is skipped, not read as ethanol
    extra = ["CCO,1", "CCO,9", '"CCO c1ccccc1Cl",5', "OCC,1"]
    csv_path = _rows(tmp_path, extra)
    out = tmp_path / "run"
    argv = ["--csv", str(csv_path), "--target-col", "y", "--duplicates", "mean"]
    metrics = example.main([*argv, "--out", str(out), *RANDOM])
    assert metrics["n_skipped"] == 1 and metrics["skipped"][0]["row"] == 26
    assert "contains whitespace" in metrics["skipped"][0]["reason"]
    assert [d["row"] for d in metrics["duplicates"]] == [24, 25, 27]
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 24
    assert "3 row(s) repeat an earlier row's molecule" in capsys.readouterr().out
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["row"]) for r in rows] == list(range(28))  # every row, input order
    header = ["smiles", "row", "split", "y_true", "y_pred", "y_std", "y_lo", "y_hi", "error"]
    assert list(rows[0]) == header
    ethanol = rows[3]
    assert float(ethanol["y_true"]) == pytest.approx((0.75 + 1 + 9 + 1) / 4)
    assert rows[26]["y_pred"] == "" and "contains whitespace" in rows[26]["error"]
    for row in (24, 25, 27):  # merged copies: the molecule's split and prediction
        assert rows[row]["error"] == "duplicate of row 3 (same molecule, scored once as that row)"
        assert (rows[row]["split"], rows[row]["y_pred"]) == (ethanol["split"], ethanol["y_pred"])
        assert (rows[row]["y_lo"], rows[row]["y_hi"]) == (ethanol["y_lo"], ethanol["y_hi"])
    assert rows[25]["y_true"] == "9"
    test = [r for r in rows if r["split"] == "test" and not r["error"]]
    error = [(float(r["y_pred"]) - float(r["y_true"])) ** 2 for r in test]
    assert math.isclose((sum(error) / len(error)) ** 0.5, metrics["test_rmse"], rel_tol=1e-4)


def test_copies_in_two_splits_of_a_split_column_are_one_error_line(example, tmp_path, capsys):
    labels = ["train"] * 16 + ["val"] * 4 + ["test"] * 4
    rows = [f"{s},{i},{label}" for i, (s, label) in enumerate(zip(MOLECULES, labels, strict=True))]
    csv_path = _write_csv(tmp_path / "s.csv", [*rows, "OCC,3,test"], header="smiles,y,split")
    argv = ["--csv", str(csv_path), "--target-col", "y", "--split-column", "split", *QUICK]
    message = _error_line(example, argv, capsys)
    assert "rows 3 and 24 hold the same molecule ('OCC')" in message
    assert "'train' and 'test'" in message


def test_multitask_label_problems_name_the_column(example, tmp_path, capsys):
    header = "smiles,y,z,split"
    labels = ["train"] * 16 + ["val"] * 4 + ["test"] * 4
    empty = [f"{s},{i},,{lab}" for i, (s, lab) in enumerate(zip(MOLECULES, labels, strict=True))]
    path = _write_csv(tmp_path / "empty.csv", empty, header=header)
    argv = ["--csv", str(path), "--target-col", "y", "z", "--out", str(tmp_path / "r"), *RANDOM]
    assert "target column 'z' has no labels" in _error_line(example, argv, capsys)
    only_test = [
        f"{s},{i},{7 if lab == 'test' else ''},{lab}"
        for i, (s, lab) in enumerate(zip(MOLECULES, labels, strict=True))
    ]
    path = _write_csv(tmp_path / "test_only.csv", only_test, header=header)
    argv = ["--csv", str(path), "--target-col", "y", "z", "--split-column", "split", *QUICK]
    message = _error_line(example, argv, capsys)
    assert "target column 'z' has no labels in the train split" in message
    assert "4 in test" in message


def test_constant_task_has_no_test_r2(example, tmp_path):
    rows = [f"{s},{i / 4},1.0" for i, s in enumerate(MOLECULES)]
    path = _write_csv(tmp_path / "const.csv", rows, header="smiles,y,z")
    argv = ["--csv", str(path), "--target-col", "y", "z", "--out", str(tmp_path / "r"), *RANDOM]
    metrics = example.main(argv)
    assert metrics["test_r2_per_task"]["z"] is None
    assert metrics["test_r2"] == pytest.approx(metrics["test_r2_per_task"]["y"])
    assert "undefined for ['z']" in metrics["test_r2_note"]


def test_descriptor_cache_goes_under_out_not_the_working_directory(example, tmp_path, monkeypatch):
    csv_path = _rows(tmp_path, [])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "run"
    argv = ["--csv", str(csv_path), "--target-col", "y", "--descriptors", "--out", str(out)]
    example.main([*argv, "--no-baselines", *RANDOM])
    assert list(cwd.iterdir()) == []
    assert list((out / "cache").glob("descriptors-*.pt"))


def test_split_column_defines_the_split(example, tmp_path):
    smiles = [f"{'C' * n}O" for n in range(1, 13)] + ["c1ccccc1", "c1ccncc1", "C1CCCCC1"]
    labels = ["train"] * 9 + ["val", "VAL", "test"] + ["test", "train", "valid"]
    rows = [f"{s},{i},{label}" for i, (s, label) in enumerate(zip(smiles, labels, strict=True))]
    csv_path = _write_csv(tmp_path / "split.csv", rows, header="smiles,y,split")
    metrics = example.main(
        ["--csv", str(csv_path), "--target-col", "y", "--split-column", "split"]
        + ["--out", str(tmp_path / "run"), *QUICK]
    )
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (10, 3, 2)
    assert metrics["split"] == "column:split"
    with open(tmp_path / "run" / "predictions.csv", newline="") as f:
        by_row = {int(r["row"]): r["split"] for r in csv.DictReader(f)}
    assert by_row[11] == "test" and by_row[13] == "train" and by_row[14] == "val"


def test_bad_split_label_is_one_error_line(example, tmp_path, capsys):
    rows = ["CCO,1,train", "CCN,2,train", "CCC,3,dev", "CCCl,4,test"]
    csv_path = _write_csv(tmp_path / "s.csv", rows, header="smiles,y,split")
    message = _error_line(
        example,
        ["--csv", str(csv_path), "--target-col", "y", "--split-column", "split", *QUICK],
        capsys,
    )
    assert "row 2 ('CCC'): split label 'dev'" in message


def test_one_scaffold_csv_stops_with_advice(example, tmp_path, capsys):
    rows = [f"{'C' * n}{'O' * (n % 3)},{n}" for n in range(1, 21)]  # all acyclic: one scaffold
    csv_path = _write_csv(tmp_path / "acyclic.csv", rows)
    message = _error_line(
        example,
        ["--csv", str(csv_path), "--smiles-col", "smi", "--target-col", "y", *QUICK],
        capsys,
    )
    assert "20 molecules share 1 scaffold(s)" in message and "--split random" in message


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--device", "cuda"], "sees no CUDA GPU"),
        (["--resume"], "nothing to resume"),
        (["--csv", "does/not/exist.csv", "--target-col", "y"], "cannot read does/not/exist.csv"),
    ],
)
def test_cli_errors_are_one_line(example, tmp_path, capsys, argv, expected):
    import torch

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    message = _error_line(example, [*argv, "--out", str(tmp_path / "run"), *QUICK], capsys)
    assert expected in message


@pytest.mark.parametrize("limit", ["-5", "0"])
def test_a_limit_below_one_is_an_argument_error(example, capsys, limit):
    with pytest.raises(SystemExit) as exit_info:
        example.parse_args(["--limit", limit])
    assert exit_info.value.code == 2  # argparse's usage error, before any data is read
    assert f"--limit must be >= 1, got {limit}" in capsys.readouterr().err


def test_an_out_that_is_a_file_is_one_error_line(example, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    message = _error_line(example, ["--out", str(afile), *QUICK], capsys)
    assert message == f"error: --out {str(afile)!r} is a file, not a directory: pass a directory"


def test_a_read_only_out_is_one_error_line(example, tmp_path, capsys):
    (tmp_path / "ro").mkdir(mode=0o555)
    try:
        (tmp_path / "ro" / "probe").touch()
        pytest.skip("this user writes into read-only directories (root)")
    except PermissionError:
        pass
    message = _error_line(example, ["--out", str(tmp_path / "ro"), *QUICK], capsys)
    assert "is not writable (Permission denied)" in message


# 40 molecules of the embedded pIC50 set, as in issue 22
RESUMABLE = ["--limit", "40", "--split", "random", "--epochs", "2", "--no-baselines"]
RESUMABLE += ["--hidden", "16", "--head-hidden", "16", "--quiet"]


def test_resume_on_another_split_seed_limit_or_model_is_one_error_line(example, tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")]
    example.main([*RESUMABLE, *out])
    last = tmp_path / "run" / "model_0" / "last.pt"
    before = last.read_bytes()
    for change, expected in [
        (["--split", "scaffold"], "split='scaffold split' here, 'random split' in the checkpoint"),
        (["--seed", "1"], "seed=1 here, 0 in the checkpoint"),
        (["--limit", "30"], "limit=30 here, 40 in the checkpoint"),
        (["--hidden", "32"], "another model (convs.0.lin_input.weight is [16, 62] in the"),
        (["--conv", "gcn"], "another model (edge_encoder.0.weight"),
    ]:
        message = _error_line(example, [*RESUMABLE, *out, "--resume", *change], capsys)
        assert message.startswith(f"error: --resume: {last} ")
        assert expected in message, message
        assert message.endswith("give the options of that run, or another --out to train afresh")
    assert last.read_bytes() == before  # nothing trained, nothing written


def test_resume_with_more_epochs_trains_on_and_a_torn_checkpoint_is_one_line(
    example, tmp_path, capsys
):
    from gconv.train import load_checkpoint

    out = ["--out", str(tmp_path / "run")]
    example.main([*RESUMABLE, *out])
    metrics = example.main([*RESUMABLE, *out, "--resume", "--epochs", "4"])  # OneCycle re-sized
    last = tmp_path / "run" / "model_0" / "last.pt"
    assert metrics["epochs"] == 4 and load_checkpoint(last)["epoch"] == 4
    last.write_bytes(last.read_bytes()[:1000])
    message = _error_line(example, [*RESUMABLE, *out, "--resume", "--epochs", "5"], capsys)
    assert message.startswith(f"error: --resume: could not read checkpoint {last}: the file is")


def test_csv_without_target_column_is_a_usage_error(example, tmp_path):
    with pytest.raises(SystemExit):
        example.parse_args(["--csv", str(tmp_path / "x.csv")])


@pytest.mark.slow
def test_full_chembl_run_meets_targets(example, tmp_path):
    """README claim (scaffold split): clearly below the mean predictor, within 10 % of the
    Morgan-fingerprint baseline or better."""
    metrics = example.main(["--out", str(tmp_path), "--quiet"])
    assert metrics["test_rmse"] < 0.8 * metrics["baseline_mean_rmse"]
    assert metrics["test_rmse"] <= 1.10 * metrics["baseline_fp_rmse"]


@pytest.mark.slow
def test_full_tpsa_run_reaches_r2(example, tmp_path):
    """TPSA is a sum over atoms: the default model must reach R² >= 0.95."""
    metrics = example.main(["--dataset", "tpsa", "--out", str(tmp_path), "--quiet"])
    assert metrics["test_r2"] >= 0.95
