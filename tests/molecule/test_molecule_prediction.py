"""gconv predict / fingerprint on CSV files: every row keeps its place, unreadable rows get a
reason, chunked reading gives the same file, bad input is one ``error:`` line."""

from __future__ import annotations

import types

import numpy as np
import pytest
from molecule_data import molecules, read_csv, write_csv

from gconv.cli import main, run
from gconv.molecule import fingerprint_csv, load_model, predict_csv
from gconv.molecule.prediction import read_chunks


def _rows(n: int = 12) -> list[dict[str, str]]:
    rows = [{"id": str(i), "smiles": r["smiles"], "note": "x"} for i, r in enumerate(molecules())]
    rows = rows[:n]
    rows[2]["smiles"] = "C1CC"  # unclosed ring
    rows[5]["smiles"] = ""  # empty
    rows[7]["smiles"] = "C(C)(C)(C)(C)C"  # pentavalent carbon: parses, fails sanitisation
    return rows


def _error_line(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert "Traceback" not in capsys.readouterr().err
    return message


def test_bad_rows_keep_their_place_with_a_reason(regression_dir, tmp_path, capsys):
    test = write_csv(tmp_path / "t.csv", _rows())
    out = tmp_path / "sub" / "p.csv"
    argv = ["predict", "--model-path", str(regression_dir), "-i", str(test), "-o", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"3 of 12 rows could not be read: see the 'error' column of {out}"
    ]
    rows = read_csv(out)
    assert [r["id"] for r in rows] == [str(i) for i in range(12)]
    assert list(rows[0]) == [
        "id",
        "smiles",
        "note",
        "size",
        "size_std",
        "size_lo",
        "size_hi",
        "error",
    ]
    bad = {int(r["id"]): r for r in rows if r["error"]}
    assert set(bad) == {2, 5, 7}
    assert bad[2]["error"] == "invalid SMILES 'C1CC': syntax error"
    assert "Explicit valence" in bad[7]["error"] or "valence" in bad[7]["error"].lower()
    assert all(r["size"] == r["size_std"] == r["size_lo"] == "" for r in bad.values())
    # a number for every readable row (not its sign: a 3-epoch atomwise model, auto's readout for
    # this additive target, starts from 0 per atom rather than from the training mean)
    assert all(np.isfinite(float(r["size"])) for r in rows if not r["error"])
    assert not list(out.parent.glob(".*tmp"))  # the temporary file was renamed


def test_chunked_reading_gives_the_same_file(regression_dir, tmp_path):
    test = write_csv(tmp_path / "t.csv", _rows(30))
    model = load_model(regression_dir)
    whole = predict_csv(model, test, tmp_path / "whole.csv")
    chunked = predict_csv(model, test, tmp_path / "chunked.csv", chunk_size=4)
    assert whole == {"rows": 30, "failed": 3, "path": tmp_path / "whole.csv"}
    assert chunked["rows"] == 30 and chunked["failed"] == 3
    assert (tmp_path / "whole.csv").read_text() == (tmp_path / "chunked.csv").read_text()
    header, index, chunks = read_chunks(test, "smiles", chunk_size=4)
    assert isinstance(chunks, types.GeneratorType)  # rows are read as they are needed
    assert header == ["id", "smiles", "note"] and index == 1
    assert [len(c) for c in chunks] == [4] * 7 + [2]


def test_predict_options_columns_and_defaults(classification_dir, tmp_path, capsys):
    rows = [{"SMI": r["smiles"], "has_o": "label", "extra": "e"} for r in molecules()[:5]]
    rows.append({"SMI": "CCO", "has_o": "1"})  # a short row: padded
    test = write_csv(tmp_path / "labelled.csv", rows)
    (tmp_path / "labelled.csv").write_text(
        (tmp_path / "labelled.csv").read_text().replace("CCO,1,\n", "CCO,1\n")
    )
    run(["predict", "--model-paths", str(classification_dir), "--test-path", str(test),
         "--smiles-columns", "SMI", "--drop-extra-columns", "-b", "2"])  # fmt: skip
    out = tmp_path / "labelled_preds.csv"  # chemprop's default name
    assert f"predicted 6 rows into {out}" in capsys.readouterr().out
    result = read_csv(out)
    # the input's has_o column is replaced by the prediction (chemprop's convention)
    assert list(result[0]) == ["SMI", "has_o", "has_n", "error"]
    assert all(0.0 <= float(r["has_o"]) <= 1.0 for r in result)


def test_multiclass_predictions_name_the_class_and_its_probabilities(multiclass_dir, tmp_path):
    test = write_csv(tmp_path / "t.csv", _rows())
    summary = predict_csv(load_model(multiclass_dir), test, tmp_path / "p.csv")
    rows = read_csv(tmp_path / "p.csv")
    assert summary["failed"] == 3
    assert list(rows[0])[3:] == [
        "group",
        "group_class_0",
        "group_class_1",
        "group_class_2",
        "error",
    ]
    for r in rows:
        if r["error"]:
            assert r["group"] == r["group_class_0"] == ""
        else:
            p = [float(r[f"group_class_{k}"]) for k in range(3)]
            assert int(r["group"]) == int(np.argmax(p)) and abs(sum(p) - 1) < 1e-5


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-i", "{dir}/missing.csv"], "cannot read {dir}/missing.csv: No such file"),
        (["-i", "{dir}/t.csv", "-s", "SMILES"], "has no SMILES column 'SMILES'; its columns are"),
        (["-i", "{dir}/empty.csv"], "empty.csv is empty"),
        (["-i", "{dir}/t.csv", "--chunk-size", "0"], "--chunk-size must be >= 1"),
        (["-i", "{dir}/t.csv", "--model-path", "{model}", "{model}"], "takes one model directory"),
    ],
)
def test_predict_errors_are_one_line(regression_dir, tmp_path, capsys, argv, expected):
    write_csv(tmp_path / "t.csv", _rows())
    (tmp_path / "empty.csv").write_text("")
    argv = [a.format(dir=tmp_path, model=regression_dir) for a in argv]
    if "--model-path" not in argv:
        argv += ["--model-path", str(regression_dir)]
    message = _error_line(["predict", *argv, "-o", str(tmp_path / "p.csv")], capsys)
    assert expected.format(dir=tmp_path) in message


def test_fingerprints_per_member_equal_the_embeddings(regression_dir, tmp_path, capsys):
    test = write_csv(tmp_path / "t.csv", _rows())
    run(["fingerprint", "--model-path", str(regression_dir), "--test-path", str(test),
         "--output", str(tmp_path / "fps.csv")])  # fmt: skip
    paths = [tmp_path / "fps_0.csv", tmp_path / "fps_1.csv"]  # one file per member
    assert f"3 of 12 rows could not be read: see the 'error' column of {paths[0]}, {paths[1]}" in (
        capsys.readouterr().out
    )
    model = load_model(regression_dir)
    smiles = [r["smiles"] for r in _rows()]
    graphs, positions, _ = model.featurize(smiles)
    for k, path in enumerate(paths):
        rows = read_csv(path)
        width = model.members[k].head[0].in_features  # readout + descriptors: the head's input
        assert list(rows[0]) == ["smiles", *(f"fp_{d}" for d in range(width)), "error"]
        embedding = model.embed(graphs, member=k).numpy()
        for position, expected in zip(positions, embedding, strict=True):
            got = [float(rows[position][f"fp_{d}"]) for d in range(width)]
            assert np.allclose(got, expected, atol=1e-6)
        assert rows[2]["fp_0"] == "" and rows[2]["error"].startswith("invalid SMILES")
    assert not np.allclose(model.embed(graphs, member=0), model.embed(graphs, member=1))


def test_fingerprint_block_index_reads_the_head(classification_dir, tmp_path, capsys):
    model = load_model(classification_dir)
    test = write_csv(tmp_path / "t.csv", _rows())
    summary = fingerprint_csv(model, test, tmp_path / "f.csv", block=1)
    assert summary["dim"] == 16 and summary["paths"] == [tmp_path / "f_0.csv"]  # head_hidden 16
    graphs, _, _ = model.featurize(["CCO"])
    first_linear = model.members[0].head[0]
    assert np.allclose(
        model.embed(graphs, block=1), first_linear(model.embed(graphs, block=0)).detach()
    )
    argv = ["fingerprint", "--model-path", str(classification_dir), "-i", str(test)]
    message = _error_line([*argv, "--ffn-block-index", "5"], capsys)
    assert "--ffn-block-index: block must be from 0" in message
    run([*argv])  # default name next to the input: t_fps_0.csv
    assert (tmp_path / "t_fps_0.csv").is_file()


@pytest.mark.parametrize("kind", ["regression", "classification", "multiclass"])
def test_no_readable_row_in_a_chunk_or_a_file(kind, request, tmp_path):
    model = load_model(request.getfixturevalue(f"{kind}_dir"))
    table = model.predict([])
    assert all(len(column) == 0 for column in table.values())
    rows = [{"smiles": s} for s in ("C1CC", "", "CCO", "CCN")]
    test = write_csv(tmp_path / "t.csv", rows)
    summary = predict_csv(model, test, tmp_path / "p.csv", chunk_size=2)  # chunk 1: all bad
    assert summary == {"rows": 4, "failed": 2, "path": tmp_path / "p.csv"}
    result = read_csv(tmp_path / "p.csv")
    assert [bool(r["error"]) for r in result] == [True, True, False, False]
    (tmp_path / "h.csv").write_text("smiles\n")  # a header and no rows
    assert predict_csv(model, tmp_path / "h.csv", tmp_path / "q.csv")["rows"] == 0
    assert read_csv(tmp_path / "q.csv") == []
    assert fingerprint_csv(model, tmp_path / "h.csv", tmp_path / "f.csv")["rows"] == 0
