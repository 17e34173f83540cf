"""benchmarks/bench_explain.py: the BA-2motifs graphs are what its docstring says (the AUROC in the
README is only as good as this ground truth)."""

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch_geometric.utils import degree, is_undirected, to_networkx

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_explain.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_explain", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ba_2motifs_ground_truth():
    import networkx as nx

    bench = _bench()
    graphs = bench.ba_2motifs(20, seed=0)
    assert sorted(int(g.y) for g in graphs) == [0] * 10 + [1] * 10
    for graph in graphs:
        assert graph.num_nodes == bench.BASE_NODES + 5 and is_undirected(graph.edge_index)
        assert graph.in_motif.sum() == 5 and graph.in_motif[bench.BASE_NODES :].all()
        motif = graph.subgraph(graph.in_motif)
        # a house is a square with a roof (6 edges, two nodes of degree 3); a 5-cycle has 5
        expected_edges = 6 if int(graph.y) == 0 else 5
        assert motif.num_edges == 2 * expected_edges
        # attached by one edge (both directions); PyG's BA base itself may have isolated nodes
        source, target = graph.edge_index
        assert int((graph.in_motif[source] != graph.in_motif[target]).sum()) == 2
        motif_graph = to_networkx(motif, to_undirected=True)
        assert nx.is_connected(motif_graph)
        assert sorted(d for _, d in motif_graph.degree()) == (
            [2, 2, 2, 3, 3] if int(graph.y) == 0 else [2] * 5
        )
        node_degree = degree(graph.edge_index[0], graph.num_nodes).long().clamp_max(9)
        torch.testing.assert_close(graph.x.argmax(dim=-1), node_degree)
        assert (graph.x.sum(dim=-1) == 1).all()
    # seeded: the same graphs again
    again = bench.ba_2motifs(20, seed=0)
    assert all(torch.equal(a.edge_index, b.edge_index) for a, b in zip(graphs, again, strict=True))


def test_crippen_contributions_add_up_to_crippen_logp():
    """The logP truth: per heavy atom, its hydrogens folded in; the atoms sum to MolLogP."""
    from rdkit import Chem
    from rdkit.Chem import Crippen

    bench = _bench()
    for smiles in ("CCO", "OC(=O)c1ccccc1", "CN(C)C(=O)c1ccc([N+](=O)[O-])cc1", "[NH4+]"):
        contributions = bench.crippen_contributions(smiles)
        mol = Chem.MolFromSmiles(smiles)
        assert contributions.shape == (mol.GetNumAtoms(),)
        assert abs(contributions.sum() - Crippen.MolLogP(mol)) < 1e-9


def test_substructure_truth_marks_the_matched_atoms():
    bench = _bench()
    # nitrobenzene: N and both O; benzoic acid: C, =O, OH; ethylamine: the N; toluene: none
    assert bench.substructure_atoms("O=[N+]([O-])c1ccccc1").tolist() == [True] * 3 + [False] * 6
    assert bench.substructure_atoms("OC(=O)c1ccccc1").tolist() == [True] * 3 + [False] * 6
    assert bench.substructure_atoms("CCN").tolist() == [False, False, True]
    assert not bench.substructure_atoms("Cc1ccccc1").any()
    assert not bench.substructure_atoms("CC(=O)N").any()  # an amide is no primary amine


def test_atom_benchmark_smoke():
    """A tiny run of the atom part end to end: every method scored (numbers meaningless)."""
    bench, threads = _bench(), torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: more threads only add overhead on a shared CPU
    try:
        results = bench.explain_atoms("logp", 0, epochs=1, explained=4, pyg_explained=1, limit=200)
    finally:
        torch.set_num_threads(threads)
    assert results["num_explained"] == 4 and results["test_rmse"] > 0
    for name in ("gconv ReadoutDecomposition", "gconv Occlusion", "PyG GNNExplainer"):
        assert -1 <= results[name]["pearson"] <= 1 and results[name]["ms_per_molecule"] > 0
    assert "gconv CAM" not in results  # the example's MLP head: CAM does not apply
    reference = results["reference: Crippen logP itself, atom removed (no model)"]
    assert 0 < reference["pearson"] < 1  # removal is not the contributions, even for Crippen
    for types in (
        "Crippen's atom types",
        "the model's atom types",
        "the model's atom environments of radius 1",
        "the model's atom environments of radius 2",
    ):
        fitted = results[f"reference: {types} fitted to the training logP (no model)"]
        assert -1 <= fitted["pearson"] <= 1


def _nci_logp(bench, n: int):
    """The first ``n`` NCI molecules RDKit parses, with their Crippen logP as the target."""
    import warnings

    from rdkit import Chem, RDLogger

    from gconv.data import NCI_TPSA_FILE, MoleculeDataset

    RDLogger.DisableLog("rdApp.*")
    smiles = []
    with open(NCI_TPSA_FILE) as f:
        for line in f:
            candidate = line.split(",")[0]
            if not line.startswith("#") and Chem.MolFromSmiles(candidate) is not None:
                smiles.append(candidate)
            if len(smiles) == n:
                break
    targets = [float(bench.crippen_contributions(s).sum()) for s in smiles]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return MoleculeDataset(smiles, targets, target_names=["logp"], on_error="skip")


def test_atom_type_fit_recovers_the_truth_with_crippen_types_only():
    """The identifiability references: values fitted to molecule sums give back the Crippen
    contributions when the atom types are Crippen's, far less so with the model's atom types."""
    bench = _bench()
    data = _nci_logp(bench, 700)
    train, explained = data[:600], list(data[600:])
    truth = [bench.crippen_contributions(graph.smiles) for graph in explained]
    by_type = {
        types: bench.atom_agreement(bench.atom_type_fit(train, explained, types), truth, "logp")
        for types in ("crippen", "features")
    }
    assert by_type["crippen"]["pearson"] > 0.97
    assert by_type["features"]["pearson"] < by_type["crippen"]["pearson"] - 0.1
    assert bench.crippen_types("CO")[0] != bench.crippen_types("C")[0]  # the C's neighbour


def test_radius_environments_hold_crippen_values_yet_do_not_give_them_back():
    """The radius references: an atom's environment of radius 2 in the model's features
    determines its Crippen type (so Crippen's values are one exact solution of the fit), the
    fit reproduces the training sums, and still its split is not Crippen's."""
    bench = _bench()
    data = _nci_logp(bench, 700)
    crippen_of: dict = {}
    for graph in data:
        for atom, crippen in zip(
            bench._environment_types(graph, 2), bench.crippen_types(graph.smiles), strict=True
        ):
            crippen_of.setdefault(atom[-1], set()).add(crippen)
    assert max(len(types) for types in crippen_of.values()) == 1  # radius 2 decides the type
    train, explained = data[:600], list(data[600:])
    fitted = bench.atom_type_fit(train, list(train), "radius2")
    sums = np.array([values.sum() for values in fitted])
    np.testing.assert_allclose(sums, train.y[:, 0].numpy(), atol=0.05)  # fits the sums
    truth = [bench.crippen_contributions(graph.smiles) for graph in explained]
    radius = bench.atom_agreement(bench.atom_type_fit(train, explained, "radius2"), truth, "logp")
    crippen = bench.atom_agreement(bench.atom_type_fit(train, explained, "crippen"), truth, "logp")
    assert radius["pearson"] < crippen["pearson"] - 0.1
