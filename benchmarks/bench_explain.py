"""Explainers against ground truth (graphs) and against pytorch-grad-cam (images).

    python benchmarks/bench_explain.py                 # 3 seeds, both parts (~10 min on 2 CPUs)
    python benchmarks/bench_explain.py --part graphs --seeds 0

**Graphs.** BA-2motifs built offline with PyG's generators: a Barabási-Albert graph of 20 nodes
(``BAGraph``) with one motif attached by a single edge, a house (``HouseMotif``, class 0) or a
5-cycle (``CycleMotif(5)``, class 1); a node's features are its degree, one-hot (10 columns), so
the class lives in the motif's structure alone and the motif's 5 nodes are the ground truth.
(With the constant features of the original BA-2motifs, gconv's GCN without BatchNorm stays at
chance and with BatchNorm reaches 0.97 in training mode but chance in eval mode: the constant
input leaves a near-zero variance that the running statistics cannot track.) gconv's GCN, ``GNN(conv="gcn")``
(3 layers, 32 channels, mean readout, linear head) is trained on 800 graphs for 20 epochs (Adam,
lr 1e-2, the epoch with the best validation accuracy on 100 graphs kept) and must reach >= 95 %
on 100 test graphs; then every correctly classified test graph is explained for its predicted class by each
gconv method (the whole batch in one call) and by PyG's ``GNNExplainer`` and ``CaptumExplainer``
(integrated gradients, saliency) on the same model (one graph per call, as PyG's ``Explainer`` is
used), and scored by the node AUROC of its node importance against the motif nodes (per graph,
then averaged) and by milliseconds per graph (wall clock of the explain calls, interleaved in one
process, divided by the number of graphs).

**Images.** A GAP-head CNN trained on MNIST-5k (offline) is explained on 100 test digits by gconv's
Grad-CAM / Grad-CAM++ and by pytorch-grad-cam's on the same weights and layer; reported: the largest
difference between the two libraries' maps, gconv's deletion / insertion AUC (and a random order),
and pytorch-grad-cam's ROAD scores (most- / least-relevant-first, averaged over its default
percentiles) for both maps.

**Atoms** (``--part logp``, ``substructure`` or ``atoms`` for both; ~15 min for 3 seeds on two
quiet cores). Per-atom truth on the NCI molecules shipped with RDKit (``first_5k.tpsa.csv``, the
4,991 that parse), scaffold split (80/10/10, the seed's own):

* *logP*: the target is Crippen logP, by construction a sum of atom contributions; the truth of
  an atom is its contribution (``rdMolDescriptors._CalcCrippenContribs`` on the molecule with
  explicit hydrogens, each hydrogen's added to its heavy atom, so they sum to ``MolLogP``).
  Scored by the per-molecule Pearson r and Kendall tau between signed atom scores and the truth
  (scipy), averaged over 200 test molecules. Five reference rows use no model: Crippen logP
  itself explained by atom removal (:func:`crippen_occlusion`: the ceiling of removal-based
  explanations), and one value per atom type fitted by least squares to the training molecules'
  logP (:func:`atom_type_fit`) with Crippen's own atom types (which gives the contributions back:
  the truth is identifiable from molecule sums with those types) and with the model's one-hot
  atom features as types (which does not: value moves between atom types that occur together
  without changing any sum; a model trained on molecule values is free to split them its own
  way, and a faithful explanation shows its split), and with the atoms' environments of radius
  1 and 2 in the model's features, which determine Crippen's types (radius 2 for every atom),
  so that Crippen's values are among the exact fits: the least-squares split is still another.
* *substructure*: label 1 when the molecule has a nitro group, a carboxylic acid (or
  carboxylate) or a primary amine (:data:`SUBSTRUCTURES`, ~25 % positive); the truth of an atom
  is whether a pattern matches it. Scored by the atom AUROC of the positive test molecules the
  classifier gets right.

The model (``--model dmpnn``, the default) is the molecule example's default model trained with
its recipe (:func:`train_molecule_model`: D-MPNN, MLP head, one-cycle AdamW, its 100 epochs on
logP; BCE on one logit and 30 epochs for the rule, with the ``norm`` readout, as ``auto`` would
read a yes/no rule as not additive); ``--model gcn`` is ``examples/explain_molecule.py``'s (GCN,
mean readout, one Linear head, its 25 epochs). Every gconv method explains the target column
(the regression output, or the logit) of all explained molecules in one call; signed scores
where the method has them (CAMs ``raw=True``, per-feature attributions summed over the
features); CAM only where the head is one Linear. PyG's ``GNNExplainer``
(:data:`GNN_EXPLAINER_EPOCHS` epochs, node mask ``"object"``) and ``CaptumExplainer``
(integrated gradients, node mask ``"attributes"``; on the raw logit as a regression, since
Captum takes a binary classifier only as probabilities) explain the first
:data:`PYG_EXPLAINED` of them one per call. The tables go to
``benchmarks/results/explain_atoms.md`` and the numbers to ``.json`` (each part updates its own
entry). ``--quick`` is a smoke run (400 molecules, 2 epochs, 8 explained) that writes neither.

Accuracies and AUROCs are mean +- sd over the seeds; times are medians over seeds on whatever
machine runs this (say in the results whether it was busy).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch_geometric.data import Batch, Data
from torch_geometric.datasets.graph_generator import BAGraph
from torch_geometric.datasets.motif_generator import CycleMotif, HouseMotif
from torch_geometric.loader import DataLoader
from torch_geometric.utils import degree

from gconv.explain import (
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    Occlusion,
    ReadoutDecomposition,
    Saliency,
    ScoreCAM,
)
from gconv.models import GNN
from gconv.molecule import choose_readout, default_epochs
from gconv.molecule import train as train_molecules
from gconv.molecule.training import fit_members, fit_target_scaler
from gconv.train import Trainer, seed_everything

# ----------------------------------------------------------------------------- configuration
NUM_GRAPHS = 1000  # 800 train / 100 validation / 100 test
BASE_NODES = 20
FEATURES = 10
EPOCHS = 20
GNN_EXPLAINER_EPOCHS = 100  # PyG's default is 100
IMAGE_EPOCHS = 3
IMAGES_EXPLAINED = 100
# atoms against known per-atom truth (--part logp / substructure): the NCI molecules in RDKit
RULE_EPOCHS = 30  # the substructure classifier (logP: the example's 100); see the docstring
ATOMS_EXPLAINED = 200  # held-out (scaffold test split) molecules explained per seed
PYG_EXPLAINED = 40  # of them, explained by PyG's GNNExplainer and Captum IG (one per call)
ATOM_TASKS = ("logp", "substructure")
#: where the atom parts write their tables (``.md``) and numbers (``.json``)
ATOM_RESULTS = Path(__file__).resolve().parent / "results" / "explain_atoms"
#: the substructure rule: label 1 when a molecule has any of these groups; every atom that a
#: pattern matches is a ground-truth atom
SUBSTRUCTURES = {
    "nitro": ("[NX3+](=O)[O-]", "[NX3](=O)=O"),
    "carboxylic acid": ("[CX3](=O)[OX2H1]", "[CX3](=O)[OX1-]"),
    "primary amine": ("[NX3;H2;!$(NC=[O,S,N])]",),
}


# ----------------------------------------------------------------------------- data
def ba_2motifs(num_graphs: int, seed: int) -> list[Data]:
    """Graph-level BA + house (class 0) / 5-cycle (class 1), with the motif nodes marked."""
    seed_everything(seed)  # PyG's barabasi_albert_graph draws from NumPy's generator too
    base_generator = BAGraph(num_nodes=BASE_NODES, num_edges=1)
    motifs = (HouseMotif(), CycleMotif(5))
    graphs = []
    for index in range(num_graphs):
        label = index % 2
        base, motif = base_generator(), motifs[label]()
        anchor_base = int(torch.randint(BASE_NODES, (1,)))
        anchor_motif = BASE_NODES + int(torch.randint(motif.num_nodes, (1,)))
        bridge = torch.tensor([[anchor_base, anchor_motif], [anchor_motif, anchor_base]])
        edge_index = torch.cat([base.edge_index, motif.edge_index + BASE_NODES, bridge], dim=1)
        num_nodes = BASE_NODES + motif.num_nodes
        in_motif = torch.zeros(num_nodes, dtype=torch.bool)
        in_motif[BASE_NODES:] = True
        node_degree = degree(edge_index[0], num_nodes).long().clamp_max(FEATURES - 1)
        graphs.append(
            Data(
                x=torch.nn.functional.one_hot(node_degree, FEATURES).float(),
                edge_index=edge_index,
                y=torch.tensor([label]),
                in_motif=in_motif,
            )
        )
    order = torch.randperm(num_graphs).tolist()
    return [graphs[i] for i in order]


def train_gcn(seed: int) -> tuple[GNN, list[Data], float]:
    graphs = ba_2motifs(NUM_GRAPHS, seed)
    train, val, test = graphs[:800], graphs[800:900], graphs[900:]
    seed_everything(seed)
    model = GNN(
        FEATURES, 2, conv="gcn", hidden_channels=32, num_layers=3, readout="mean", batch_norm=False
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    val_batch, test_batch = Batch.from_data_list(val), Batch.from_data_list(test)
    best_accuracy, best_state = -1.0, None
    for _ in range(EPOCHS):
        model.train()
        for batch in DataLoader(train, batch_size=50, shuffle=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(batch), batch.y).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_accuracy = float((model(val_batch).argmax(-1) == val_batch.y).float().mean())
        if val_accuracy > best_accuracy:
            best_accuracy = val_accuracy
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        accuracy = float((model(test_batch).argmax(-1) == test_batch.y).float().mean())
    return model, test, accuracy


# ----------------------------------------------------------------------------- scoring
def node_auroc(scores: torch.Tensor, batch: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over graphs of the AUROC of node scores against the motif nodes."""
    values = []
    for g in range(int(batch.max()) + 1):
        mask = batch == g
        values.append(roc_auc_score(truth[mask].numpy(), scores[mask].detach().numpy()))
    return float(np.mean(values))


def node_scores(node_mask: torch.Tensor) -> torch.Tensor:
    return node_mask.detach().reshape(node_mask.size(0), -1).sum(dim=-1).cpu()


def gconv_methods(model: torch.nn.Module) -> dict:
    return {
        "gconv CAM": CAM(model),
        "gconv Grad-CAM": GradCAM(model),
        "gconv Grad-CAM++": GradCAMPlusPlus(model),
        "gconv Score-CAM": ScoreCAM(model),
        "gconv saliency": Saliency(model),
        "gconv integrated gradients": IntegratedGradients(model),
    }


def pyg_explainer(model: torch.nn.Module, algorithm, node_mask_type: str, mode: str):
    """PyG's ``Explainer`` of graph-level raw outputs with node masks only."""
    from torch_geometric.explain import Explainer

    return Explainer(
        model,
        algorithm,
        explanation_type="model",
        node_mask_type=node_mask_type,
        edge_mask_type=None,
        model_config=dict(mode=mode, task_level="graph", return_type="raw"),
    )


def pyg_explainers(model: torch.nn.Module) -> dict:
    from torch_geometric.explain import CaptumExplainer, GNNExplainer

    mode = "multiclass_classification"
    return {
        "PyG GNNExplainer": pyg_explainer(
            model, GNNExplainer(epochs=GNN_EXPLAINER_EPOCHS), "object", mode
        ),
        "PyG Captum integrated gradients": pyg_explainer(
            model, CaptumExplainer("IntegratedGradients"), "attributes", mode
        ),
        "PyG Captum saliency": pyg_explainer(
            model, CaptumExplainer("Saliency"), "attributes", mode
        ),
    }


def explain_graphs(seed: int) -> dict:
    model, test, accuracy = train_gcn(seed)
    print(f"seed {seed}: GCN test accuracy {accuracy:.3f}", flush=True)
    batch = Batch.from_data_list(test)
    with torch.no_grad():
        predicted = model(batch).argmax(dim=-1)
    correct = [g for g, p in zip(test, predicted.tolist(), strict=True) if int(g.y) == p]
    explained = Batch.from_data_list(correct)
    results: dict[str, dict] = {"accuracy": accuracy, "num_explained": len(correct)}
    for name, method in gconv_methods(model).items():
        method(explained)  # warm-up: the target layer is chosen once, on the first call
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # IG: reported, not printed
            explanation = method(explained)
        seconds = time.perf_counter() - start
        results[name] = {
            "auroc": node_auroc(
                node_scores(explanation.node_mask), explained.batch, explained.in_motif
            ),
            "ms_per_graph": 1000 * seconds / len(correct),
        }
        print(f"seed {seed} {name}: {results[name]}", flush=True)
    torch.manual_seed(seed)
    for name, explainer in pyg_explainers(model).items():
        graphs = correct if "GNNExplainer" not in name else correct[:40]  # ~0.5 s per graph
        scores, truth, batch_index = [], [], []
        start = time.perf_counter()
        for index, graph in enumerate(graphs):
            explanation = explainer(graph.x, graph.edge_index)  # its prediction (correct)
            scores.append(node_scores(explanation.node_mask))
            truth.append(graph.in_motif)
            batch_index.append(torch.full((graph.num_nodes,), index))
        seconds = time.perf_counter() - start
        results[name] = {
            "auroc": node_auroc(torch.cat(scores), torch.cat(batch_index), torch.cat(truth)),
            "ms_per_graph": 1000 * seconds / len(graphs),
        }
        print(f"seed {seed} {name}: {results[name]}", flush=True)
    return results


# ----------------------------------------------------------------------------- images
def explain_images(seed: int) -> dict:
    from pytorch_grad_cam import GradCAM as PGCGradCAM
    from pytorch_grad_cam import GradCAMPlusPlus as PGCGradCAMPlusPlus
    from pytorch_grad_cam.metrics.road import (
        ROADLeastRelevantFirstAverage,
        ROADMostRelevantFirstAverage,
    )
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from gconv.data import TensorLoader, mnist5k
    from gconv.explain.faithfulness import faithfulness_report
    from gconv.models import CNN

    seed_everything(seed)
    (x_train, y_train), (x_test, y_test) = mnist5k(seed=seed)
    model = CNN(in_shape=(1, 28, 28), channels=(32, 64, 128), head="gap", batch_norm=True)
    trainer = Trainer(
        model, lr=3e-3, metrics=("accuracy",), device="cpu", seed=seed, progress=False
    )
    trainer.fit(TensorLoader(x_train, y_train, batch_size=100, seed=seed), epochs=IMAGE_EPOCHS)
    model = trainer.model.eval()
    accuracy = trainer.evaluate(TensorLoader(x_test, y_test, batch_size=1000))["accuracy"]
    images = x_test[:IMAGES_EXPLAINED]
    with torch.no_grad():
        predicted = model(images).argmax(dim=-1)
    targets = [ClassifierOutputTarget(int(c)) for c in predicted]
    results: dict[str, dict] = {"accuracy": accuracy}
    for name, ours, theirs in (
        ("Grad-CAM", GradCAM, PGCGradCAM),
        ("Grad-CAM++", GradCAMPlusPlus, PGCGradCAMPlusPlus),
    ):
        start = time.perf_counter()
        our_maps = ours(model, target_layer="features")(images, target=predicted)
        our_seconds = time.perf_counter() - start
        with theirs(model=model, target_layers=[model.features]) as cam:
            start = time.perf_counter()
            their_maps = torch.from_numpy(cam(input_tensor=images, targets=targets))
            their_seconds = time.perf_counter() - start
        report = faithfulness_report(model, images, our_maps, target=predicted, steps=28)
        road = {}
        for label, metric in (
            ("road_most_relevant_first", ROADMostRelevantFirstAverage()),
            ("road_least_relevant_first", ROADLeastRelevantFirstAverage()),
        ):
            for who, maps in (("gconv", our_maps), ("pytorch-grad-cam", their_maps)):
                scores = metric(images, maps.numpy(), targets, model)
                road[f"{who} {label}"] = float(np.mean(scores))
        results[name] = {
            "max_abs_diff_vs_pytorch_grad_cam": float((our_maps - their_maps).abs().max()),
            "ms_per_image_gconv": 1000 * our_seconds / len(images),
            "ms_per_image_pytorch_grad_cam": 1000 * their_seconds / len(images),
            **report,
            **road,
        }
    return results


# ----------------------------------------------------------------------------- atoms
def crippen_contributions(smiles: str) -> np.ndarray:
    """Crippen logP contribution of every heavy atom of ``smiles`` (RDKit's
    ``_CalcCrippenContribs`` on the molecule with explicit hydrogens, each hydrogen's share
    added to its heavy atom), in the atom order of the SMILES: they sum to ``MolLogP``."""
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors

    mol = Chem.MolFromSmiles(smiles)
    with_hs = Chem.AddHs(mol)
    contributions = [logp for logp, _ in rdMolDescriptors._CalcCrippenContribs(with_hs)]
    per_atom = np.array(contributions[: mol.GetNumAtoms()])  # AddHs appends the hydrogens
    for index in range(mol.GetNumAtoms(), with_hs.GetNumAtoms()):
        heavy = with_hs.GetAtomWithIdx(index).GetNeighbors()[0].GetIdx()
        per_atom[heavy] += contributions[index]
    return per_atom


def crippen_occlusion(smiles: str) -> np.ndarray:
    """Occlusion of Crippen logP itself, no model: ``MolLogP(mol) - MolLogP(mol without atom
    i)`` with every other atom keeping its hydrogens (as a graph with a node removed keeps its
    neighbours' features). How far an explanation by atom removal can agree with the atom
    contributions even for a perfect model: removing an atom changes its neighbours' Crippen
    types too."""
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors

    def logp(mol):
        mol = Chem.Mol(mol)
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)
        with_hs = Chem.AddHs(mol)
        return sum(value for value, _ in rdMolDescriptors._CalcCrippenContribs(with_hs))

    mol = Chem.MolFromSmiles(smiles)
    for atom in mol.GetAtoms():  # hydrogens fixed: no atom gains one when a neighbour goes
        atom.SetNumExplicitHs(atom.GetTotalNumHs())
        atom.SetNoImplicit(True)
    full = logp(mol)
    drops = []
    for index in range(mol.GetNumAtoms()):
        smaller = Chem.RWMol(mol)
        smaller.RemoveAtom(index)
        drops.append(full - logp(smaller.GetMol()))
    return np.array(drops)


def crippen_types(smiles: str) -> list[tuple]:
    """The Wildman-Crippen type of every heavy atom of ``smiles`` with those of its hydrogens,
    each type named by its (logP, MR) parameters as ``_CalcCrippenContribs`` gives them."""
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors

    mol = Chem.MolFromSmiles(smiles)
    with_hs = Chem.AddHs(mol)
    parameters = rdMolDescriptors._CalcCrippenContribs(with_hs)
    hydrogens: list[list] = [[] for _ in range(mol.GetNumAtoms())]
    for index in range(mol.GetNumAtoms(), with_hs.GetNumAtoms()):
        heavy = with_hs.GetAtomWithIdx(index).GetNeighbors()[0].GetIdx()
        hydrogens[heavy].append(parameters[index])
    return [(parameters[i], tuple(sorted(h))) for i, h in enumerate(hydrogens)]


def _one_hot_type(graph: Data) -> list[tuple]:
    return [tuple(x.nonzero().flatten().tolist()) for x in graph.x]


def _environment_types(graph: Data, radius: int) -> list[list[tuple]]:
    """Per atom, its environments of radius 0 to ``radius`` in the model's own features, as a
    Morgan / Weisfeiler-Lehman refinement: radius 0 is the atom's one-hot features; radius k
    adds the sorted (bond features, radius k - 1 environment) of its bonded neighbours."""
    level = [(0, t) for t in _one_hot_type(graph)]
    types = [[t] for t in level]
    bonds = [tuple(b.nonzero().flatten().tolist()) for b in graph.edge_attr]
    neighbours: list[list[tuple[int, tuple]]] = [[] for _ in level]
    for (i, j), bond in zip(graph.edge_index.t().tolist(), bonds, strict=True):
        neighbours[i].append((j, bond))  # both directions are edges: each neighbour once
    for k in range(1, radius + 1):
        level = [
            (k, level[i], tuple(sorted((bond, level[j]) for j, bond in neighbours[i])))
            for i in range(len(level))
        ]
        for atom_types, t in zip(types, level, strict=True):
            atom_types.append(t)
    return types


def atom_type_fit(train, graphs, types: str = "features") -> list[np.ndarray]:
    """Crippen's own method, no model: one value per atom type fitted by least squares so that
    each training molecule's values sum to its logP; every atom of ``graphs`` gets its type's
    value (0 for a type unseen in training). ``types="features"``: an atom's type is its one-hot
    features (element to hydrogens, what the model's atoms are); ``"crippen"``: its
    Wildman-Crippen type with its hydrogens'; ``"radius1"`` / ``"radius2"``: its environments
    in the model's features up to that radius (:func:`_environment_types`; one value each, an
    atom's value their sum, so an environment unseen in training still gets its smaller
    ones'). How far per-atom truth can be recovered from molecule-level targets at all: a
    transfer of value between atom types that always occur together (a carbonyl O and its C)
    leaves every sum unchanged, so molecule-level targets cannot decide it; with Crippen's own
    types no such transfer is left. Environments of radius 2 determine Crippen's type of every
    NCI atom (radius 1: all but four environments, 4 % of the atoms), so the radius fits hold
    Crippen's exact values among their solutions and fit the training logP exactly, yet the
    least-squares split among them is another: what any learner given only molecule sums
    faces, the model included."""
    from sklearn.linear_model import Ridge

    if types in ("radius1", "radius2"):
        radius = int(types[-1])

        def type_of(graph: Data) -> list[list[tuple]]:
            return _environment_types(graph, radius)
    else:
        single = _one_hot_type if types == "features" else (lambda g: crippen_types(g.smiles))

        def type_of(graph: Data) -> list[list[tuple]]:
            return [[t] for t in single(graph)]

    index: dict[tuple, int] = {}
    train_types = [
        [index.setdefault(t, len(index)) for atom in type_of(g) for t in atom] for g in train
    ]
    counts = np.zeros((len(train_types), len(index)))
    for row, atoms in enumerate(train_types):
        np.add.at(counts[row], atoms, 1.0)
    fit = Ridge(alpha=1e-3, fit_intercept=False).fit(counts, train.y[:, 0].numpy())
    values = np.append(fit.coef_, 0.0)  # the last: types unseen in training
    unseen = len(fit.coef_)
    return [
        np.array([values[[index.get(t, unseen) for t in atom]].sum() for atom in type_of(g)])
        for g in graphs
    ]


def substructure_atoms(smiles: str) -> np.ndarray:
    """Which heavy atoms of ``smiles`` a :data:`SUBSTRUCTURES` pattern matches (bool)."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    matched = np.zeros(mol.GetNumAtoms(), dtype=bool)
    for patterns in SUBSTRUCTURES.values():
        for pattern in patterns:
            for match in mol.GetSubstructMatches(Chem.MolFromSmarts(pattern)):
                matched[list(match)] = True
    return matched


_NCI: dict = {}


def nci_molecules(task: str):
    """The NCI molecules of RDKit's ``first_5k.tpsa.csv`` (those RDKit parses) as a
    ``MoleculeDataset`` with the task's target: Crippen logP, or 1 / 0 for the substructure
    rule; per-atom truth in ``truth`` (one array per molecule, in the graphs' atom order)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Crippen

    from gconv.data import NCI_TPSA_FILE, MoleculeDataset

    if task in _NCI:
        return _NCI[task]
    RDLogger.DisableLog("rdApp.*")  # the few unparsable rows are left out, not printed
    smiles = []
    with open(NCI_TPSA_FILE) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                candidate = line.split(",")[0]
                if Chem.MolFromSmiles(candidate) is not None:
                    smiles.append(candidate)
    if task == "logp":
        targets = [Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles]
        truth = [crippen_contributions(s) for s in smiles]
    else:
        truth = [substructure_atoms(s) for s in smiles]
        targets = [float(t.any()) for t in truth]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dataset = MoleculeDataset(smiles, targets, target_names=[task], on_error="skip")
    truth = [truth[row] for row in dataset.rows]
    for graph, values in zip(dataset, truth, strict=True):
        if graph.num_nodes != len(values):  # the featuriser keeps RDKit's atom order
            raise RuntimeError(f"{graph.smiles}: {graph.num_nodes} nodes, {len(values)} atoms")
    _NCI[task] = (dataset, truth)
    return _NCI[task]


def _example(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_molecule_model(
    task: str,
    seed: int,
    epochs: int | None = None,
    limit: int | None = None,
    model_kind: str = "dmpnn",
    readout: str = "auto",
    layers: int | None = None,
) -> dict:
    """Train on a scaffold split of the NCI molecules (logP: masked MSE on the standardised
    target; the substructure rule: BCE on one logit) and score the held-out molecules.

    ``model_kind="dmpnn"``: the molecule example's default model and recipe
    (``gconv.molecule``: ``train``'s defaults, ``choose_readout`` and ``default_epochs``, trained
    by the tool's own loop, ``gconv.molecule.training.fit_members``, as one member) —
    D-MPNN, MLP head, one-cycle AdamW; readout ``auto`` for logP (``atomwise``), ``norm`` for the
    rule (``auto`` would read a yes/no rule as not additive and pick meanmax, which the
    decomposition refuses); epochs: the example's 100 for logP, :data:`RULE_EPOCHS` for the
    rule. ``model_kind="gcn"``: ``examples/explain_molecule.py``'s model and recipe (GCN, mean
    readout, one Linear head, AdamW at its learning rate and batch size, its 25 epochs).
    ``epochs`` overrides the number of epochs; ``readout`` (not ``"auto"``) the D-MPNN's
    readout on logP, ``layers`` its message-passing steps (an experiment; default: the tool's). The logP target is scaled as the tool scales it
    (:func:`~gconv.molecule.training.fit_target_scaler`: centred, or only scaled for the
    atomwise readout)."""
    from gconv.data import ATOM_FEATURE_DIM, BOND_FEATURE_DIM

    dataset, truth = nci_molecules(task)
    if limit is not None:
        dataset, truth = dataset[:limit], truth[:limit]
    position = {row: index for index, row in enumerate(dataset.rows)}
    # the molecule tool's defaults: gconv.molecule.train's signature (examples/molecule_gcn.py
    # is that command under its own name)
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(train_molecules).parameters.items()
    }
    train, val, test = dataset.split("scaffold", sizes=defaults["split_sizes"], seed=seed)
    test_truth = [truth[position[row]] for row in test.rows]
    if model_kind == "dmpnn":
        if task == "logp":
            readout = choose_readout(train, readout)[0]
            epochs = epochs or default_epochs(len(train), defaults["batch_size"])
        else:
            readout, epochs = "norm", epochs or RULE_EPOCHS
    else:
        readout = "mean"
    if task == "logp":
        standardizer = fit_target_scaler(train.y, readout)
        train_set, val_set = train.standardized(standardizer), val.standardized(standardizer)
        loss, metrics = "masked_mse", ("rmse",)
    else:
        standardizer, train_set, val_set = None, train, val
        loss, metrics = "bce", ("roc_auc",)
    if model_kind == "dmpnn":
        model_kwargs = dict(
            in_channels=ATOM_FEATURE_DIM,
            out_channels=1,
            conv=defaults["conv"],
            hidden_channels=defaults["hidden"],
            num_layers=layers or defaults["layers"],
            readout=readout,
            dropout=defaults["dropout"],
            batch_norm=defaults["batch_norm"],
            edge_dim=BOND_FEATURE_DIM,
            head_hidden=tuple(defaults["head_hidden"]),
        )
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as checkpoints:  # the tool's one training loop
            (model,), _ = fit_members(
                train_set,
                val_set,
                model_kwargs,
                loss,
                metrics,
                ensemble_size=1,
                epochs=epochs,
                batch_size=defaults["batch_size"],
                lr=defaults["lr"],
                weight_decay=defaults["weight_decay"],
                seed=seed,
                device=torch.device("cpu"),
                output_dir=Path(checkpoints),
                quiet=True,
            )
        train_seconds = time.perf_counter() - start
    else:
        seed_everything(seed)
        cam_defaults = _example("explain_molecule").DEFAULTS
        epochs = epochs or cam_defaults["epochs"]
        model = GNN(
            ATOM_FEATURE_DIM,
            1,
            conv="gcn",
            hidden_channels=cam_defaults["hidden"],
            num_layers=cam_defaults["layers"],
            readout=readout,
            head_hidden=(),
        )
        trainer = Trainer(
            model,
            loss=loss,
            optimizer="adamw",
            lr=cam_defaults["lr"],
            metrics=metrics,
            device="cpu",
            monitor="val_loss",
            seed=seed,
            progress=False,
        )
        start = time.perf_counter()
        trainer.fit(
            DataLoader(train_set, batch_size=cam_defaults["batch_size"], shuffle=True),
            DataLoader(val_set, batch_size=256),
            epochs=epochs,
        )
        model = trainer.load_best()
        train_seconds = time.perf_counter() - start
    model = model.eval()
    test_batch = Batch.from_data_list(list(test))
    with torch.no_grad():
        output = model(test_batch)[:, 0]
    y = test_batch.y[:, 0]
    if task == "logp":
        val_batch = Batch.from_data_list(list(val))
        with torch.no_grad():
            val_output = standardizer.inverse_transform(model(val_batch))[:, 0]
        predicted = output * standardizer.std[0] + standardizer.mean[0]
        quality = {
            "test_rmse": float(((predicted - y) ** 2).mean().sqrt()),
            "test_sd": float(y.std()),
            "val_rmse": float(((val_output - val_batch.y[:, 0]) ** 2).mean().sqrt()),
        }
    else:
        quality = {
            "test_auroc": float(roc_auc_score(y.numpy(), output.numpy())),
            "test_accuracy": float(((output > 0).float() == y).float().mean()),
        }
    return {
        "model": model,
        "train": train,
        "test": test,
        "truth": test_truth,
        "val": val,
        "val_truth": [truth[position[row]] for row in val.rows],
        "output": output,
        "readout": readout,
        "epochs": epochs,
        "train_seconds": train_seconds,
        **quality,
    }


def _summed(explanation) -> torch.Tensor:
    return node_scores(explanation.node_mask)


def atom_methods(model: torch.nn.Module) -> dict:
    """Every gconv method as ``batch -> signed atom scores [N]`` (raw, before any ReLU or
    normalisation; attributions per feature summed over the features), target column 0: the
    regression output or the classifier's logit. ``None`` where a method does not apply."""

    def raw_cam(method):
        return lambda batch: _summed(method(batch, target=0, raw=True))

    def plain(method):
        return lambda batch: _summed(method(batch, target=0))

    # CAM needs one Linear after the readout: not the example's MLP head
    methods = {
        "gconv CAM": raw_cam(CAM(model)) if isinstance(model.head, torch.nn.Linear) else None
    }
    methods.update(
        {
            "gconv ReadoutDecomposition": plain(ReadoutDecomposition(model)),
            "gconv Occlusion": plain(Occlusion(model)),
            "gconv IntegratedGradients (empty molecule)": plain(
                IntegratedGradients(model, baseline="empty")
            ),
            "gconv IntegratedGradients (zero features)": plain(IntegratedGradients(model)),
            "gconv Grad-CAM": raw_cam(GradCAM(model)),
            "gconv Grad-CAM++": raw_cam(GradCAMPlusPlus(model)),
            "gconv Score-CAM": raw_cam(ScoreCAM(model)),
            "gconv saliency (signed)": plain(Saliency(model, absolute=False)),
            "gconv saliency (absolute)": plain(Saliency(model)),
        }
    )
    return methods


class _EdgeAttrPositional(torch.nn.Module):
    """``model(x, edge_index, edge_attr)``: PyG's Captum wrapper passes the extra arguments
    positionally, gconv's ``GNN`` takes ``edge_attr`` by keyword."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, edge_index, edge_attr):
        return self.model(x, edge_index, edge_attr=edge_attr)


def pyg_atom_explainers(model: torch.nn.Module, task: str) -> dict:
    from torch_geometric.explain import CaptumExplainer, GNNExplainer

    model = _EdgeAttrPositional(model)
    mode = "regression" if task == "logp" else "binary_classification"
    return {
        "PyG GNNExplainer": pyg_explainer(
            model, GNNExplainer(epochs=GNN_EXPLAINER_EPOCHS), "object", mode
        ),
        # Captum takes a binary classifier only as probabilities: its raw logit, as a regression
        "PyG Captum integrated gradients": pyg_explainer(
            model, CaptumExplainer("IntegratedGradients"), "attributes", "regression"
        ),
    }


def atom_agreement(
    scores: list[np.ndarray], truth: list[np.ndarray], task: str
) -> dict[str, float]:
    """Mean over molecules: Pearson r and Kendall tau with the Crippen contributions (logP), or
    the atom AUROC against the matched atoms (substructure); molecules where it is undefined
    (a constant score or truth, fewer than 3 atoms) are counted and left out."""
    from scipy.stats import kendalltau, pearsonr

    values: dict[str, list[float]] = {}
    undefined = 0
    for score, true in zip(scores, truth, strict=True):
        if task == "logp":
            if len(true) < 3 or np.ptp(score) == 0 or np.ptp(true) == 0:
                undefined += 1
                continue
            values.setdefault("pearson", []).append(float(pearsonr(score, true).statistic))
            values.setdefault("kendall", []).append(float(kendalltau(score, true).statistic))
        else:
            if true.all() or not true.any():
                undefined += 1
                continue
            values.setdefault("auroc", []).append(float(roc_auc_score(true, score)))
    result = {key: float(np.mean(v)) for key, v in values.items()}
    result["num_undefined"] = undefined
    return result


def explain_atoms(
    task: str,
    seed: int,
    epochs: int | None = None,
    explained: int = ATOMS_EXPLAINED,
    pyg_explained: int = PYG_EXPLAINED,
    limit: int | None = None,
    model_kind: str = "dmpnn",
    readout: str = "auto",
) -> dict:
    """Train (:func:`train_molecule_model`), explain held-out molecules with every method and
    score the atom scores against the truth: one seed's numbers."""
    trained = train_molecule_model(task, seed, epochs, limit, model_kind, readout)
    model, test, truth = trained["model"], trained["test"], trained["truth"]
    if task == "substructure":  # the positive molecules the classifier gets right
        positive = [i for i, g in enumerate(test) if int(g.y) == 1]
        keep = [i for i in positive if trained["output"][i] > 0] or positive  # (--quick: none)
    else:
        keep = list(range(len(test)))
    keep = keep[:explained]
    graphs = [test[i] for i in keep]
    truth = [truth[i] for i in keep]
    batch = Batch.from_data_list(graphs)
    quality = {k: v for k, v in trained.items() if k.startswith("test_") or k == "val_rmse"}
    print(
        f"seed {seed} {task} ({model_kind}): readout {trained['readout']}, {quality}, "
        f"{trained['epochs']} epochs in {trained['train_seconds']:.0f}s, {len(graphs)} explained",
        flush=True,
    )
    results: dict = {
        **quality,
        "model": _model_label(model_kind, trained["readout"]),
        "readout": trained["readout"],
        "epochs": trained["epochs"],
        "train_seconds": trained["train_seconds"],
        "num_explained": len(graphs),
    }
    if task == "logp":  # the ceiling of explanations by removal: Crippen explained by it
        start = time.perf_counter()
        per_molecule = [crippen_occlusion(graph.smiles) for graph in graphs]
        seconds = time.perf_counter() - start
        results["reference: Crippen logP itself, atom removed (no model)"] = {
            **atom_agreement(per_molecule, truth, task),
            "ms_per_molecule": 1000 * seconds / len(graphs),
        }
        for types, label in (
            ("crippen", "Crippen's atom types"),
            ("features", "the model's atom types"),
            ("radius1", "the model's atom environments of radius 1"),
            ("radius2", "the model's atom environments of radius 2"),
        ):
            start = time.perf_counter()
            per_molecule = atom_type_fit(trained["train"], graphs, types)
            seconds = time.perf_counter() - start
            results[f"reference: {label} fitted to the training logP (no model)"] = {
                **atom_agreement(per_molecule, truth, task),
                "ms_per_molecule": 1000 * seconds / len(graphs),
            }
    sizes = torch.bincount(batch.batch).tolist()
    for name, method in atom_methods(model).items():
        if method is None:
            print(f"seed {seed} {name}: does not apply (MLP head)", flush=True)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # IG: convergence reported, not printed
            method(Batch.from_data_list(graphs[:2]))  # warm-up: layer search, first-call costs
            start = time.perf_counter()
            scores = method(batch)
            seconds = time.perf_counter() - start
        per_molecule = [s.numpy() for s in scores.split(sizes)]
        results[name] = {
            **atom_agreement(per_molecule, truth, task),
            "ms_per_molecule": 1000 * seconds / len(graphs),
        }
        print(f"seed {seed} {name}: {results[name]}", flush=True)
    torch.manual_seed(seed)
    for name, explainer in pyg_atom_explainers(model, task).items():
        subset = graphs[:pyg_explained]
        per_molecule = []
        start = time.perf_counter()
        for graph in subset:
            explanation = explainer(graph.x, graph.edge_index, edge_attr=graph.edge_attr)
            per_molecule.append(node_scores(explanation.node_mask).numpy())
        seconds = time.perf_counter() - start
        results[name] = {
            **atom_agreement(per_molecule, truth[:pyg_explained], task),
            "ms_per_molecule": 1000 * seconds / len(subset),
        }
        print(f"seed {seed} {name}: {results[name]}", flush=True)
    return results


# ----------------------------------------------------------------------------- report
def summarise(runs: list[dict]) -> dict:
    """Mean and sd of every number across seeds (median for times)."""
    summary: dict = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        if isinstance(values[0], dict):
            summary[key] = summarise(values)
        elif isinstance(values[0], str):  # a label, the same in every run
            summary[key] = values[0] if len(set(values)) == 1 else " / ".join(sorted(set(values)))
        elif key.startswith("ms_per"):
            summary[key] = {"median": statistics.median(values)}
        else:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[key] = {"mean": statistics.fmean(values), "sd": sd}
    return summary


def _per_seed(summary: dict) -> dict:
    """A one-seed summary back to plain numbers (to merge runs made in separate processes)."""
    out = {}
    for key, value in summary.items():
        if isinstance(value, dict) and ("mean" in value or "median" in value):
            out[key] = value.get("mean", value.get("median"))
        elif isinstance(value, dict):
            out[key] = _per_seed(value)
        else:
            out[key] = value
    return out


def merge(paths: list[Path]) -> dict:
    """Summaries of several one-seed runs (``--seeds s`` each, e.g. run in parallel) as one."""
    runs = [json.loads(path.read_text()) for path in paths]
    merged = {key: runs[0][key] for key in ("date", "machine")}
    merged["seeds"] = [seed for run in runs for seed in run["seeds"]]
    for part in ("graphs", "images", *_atom_keys()):
        if all(part in run for run in runs):
            merged[part] = summarise([_per_seed(run[part]) for run in runs])
    return merged


def print_graph_table(summary: dict) -> None:
    acc = summary["accuracy"]
    print(f"\nBA-2motifs, gconv GCN test accuracy {acc['mean']:.3f} +- {acc['sd']:.3f}")
    print(f"{'method':<34}{'node AUROC':>18}{'ms / graph':>12}")
    for name, row in summary.items():
        if isinstance(row, dict) and "auroc" in row:
            auroc = row["auroc"]
            print(
                f"{name:<34}{auroc['mean']:>11.3f} +- {auroc['sd']:.3f}"
                f"{row['ms_per_graph']['median']:>12.2f}"
            )


_ATOM_HEADERS = {
    "logp": ("Pearson r", "Kendall tau"),
    "substructure": ("atom AUROC",),
}
_ATOM_KEYS = {"logp": ("pearson", "kendall"), "substructure": ("auroc",)}


_MODEL_LABELS = {  # the parts stored before the label was stored with them
    "dmpnn": "the molecule example's default model (D-MPNN, norm readout, MLP head)",
    "gcn": "explain_molecule.py's model (GCN, mean readout, one Linear head)",
}


def _model_label(model_kind: str, readout: str) -> str:
    if model_kind == "gcn":
        return _MODEL_LABELS["gcn"]
    return f"the molecule example's default model recipe (D-MPNN, {readout} readout, MLP head)"


def atom_table(key: str, summary: dict) -> list[str]:
    """The markdown table of one atom part (mean +- sd over the seeds, median ms)."""
    task, _, variant = key.partition("_")
    model = summary.get("model") or _MODEL_LABELS["gcn" if variant == "gcn" else "dmpnn"]
    epochs = summary["epochs"]["mean"]
    if task == "logp":
        title = (
            f"Crippen logP atom contributions, NCI scaffold test molecules, {model}, "
            f"{epochs:.0f} epochs; test RMSE "
            f"{summary['test_rmse']['mean']:.3f} ± {summary['test_rmse']['sd']:.3f} "
            f"(sd of the target {summary['test_sd']['mean']:.2f})"
            + (
                f", validation RMSE {summary['val_rmse']['mean']:.3f} ± "
                f"{summary['val_rmse']['sd']:.3f}"
                if "val_rmse" in summary
                else ""
            )
        )
    else:
        title = (
            f"substructure rule ({', '.join(SUBSTRUCTURES)}), correctly classified positive "
            f"test molecules, {model}, {epochs:.0f} epochs; test AUROC "
            f"{summary['test_auroc']['mean']:.3f} ± "
            f"{summary['test_auroc']['sd']:.3f}"
        )
    headers = _ATOM_HEADERS[task]
    lines = [
        f"{title}:",
        "",
        "| method | " + " | ".join(headers) + " | ms / molecule |",
        "|---|" + "---:|" * (len(headers) + 1),
    ]
    for name, row in summary.items():
        if not (isinstance(row, dict) and "ms_per_molecule" in row):
            continue
        cells = [
            f"{row[key]['mean']:.3f} ± {row[key]['sd']:.3f}" if key in row else "n/a"
            for key in _ATOM_KEYS[task]
        ]
        ms = row["ms_per_molecule"]["median"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ms:.3g} |")
    return lines


#: the D-MPNN's logP readout (``--readout``; ``auto``: the tool's rule); the logP part of the
#: D-MPNN is stored under ``logp_<readout used>``
LOGP_READOUTS = ("auto", "atomwise", "norm")


def _atom_keys() -> list[str]:
    readouts = [f"logp_{r}" for r in LOGP_READOUTS[1:]]
    return [*readouts, "logp_gcn", "substructure", "substructure_gcn"]


def _part_flags(key: str) -> str:
    task, _, variant = key.partition("_")
    if variant == "gcn":
        return f"--part {task} --model gcn"
    return f"--part {task}" + (f" --readout {variant}" if variant else "")


def write_atom_results(results: dict, keys: list[str] | None = None) -> None:
    """Update ``benchmarks/results/explain_atoms.json`` with the atom parts of ``results`` (each
    with its date, machine and seeds; parts run separately accumulate) and render every part
    it holds as tables into ``explain_atoms.md``."""
    path = ATOM_RESULTS.with_suffix(".json")
    stored = json.loads(path.read_text()) if path.exists() else {}
    for key in [k for k in stored if k not in _atom_keys()]:  # e.g. "logp", now logp_<readout>
        print(f"dropped the stored part {key!r}: superseded by {_atom_keys()}")
        del stored[key]
    for key in keys if keys is not None else _atom_keys():
        if key in results:
            stored[key] = {
                "date": results["date"],
                "machine": results["machine"],
                "seeds": results["seeds"],
                **results[key],
            }
    path.write_text(json.dumps(stored, indent=1) + "\n")
    lines = [
        "Atom attributions against known per-atom truth, `benchmarks/bench_explain.py --part "
        "atoms` (written by the script). Mean ± sd over the seeds of the per-molecule mean; "
        "milliseconds per molecule: median over the seeds, on the machine and load named.",
        "",
    ]
    for key in _atom_keys():
        if key in stored:
            entry = stored[key]
            lines += [
                f"`{_part_flags(key)}` ({entry['date']}, {entry['machine']}, seeds "
                f"{entry['seeds']})",
                "",
                *atom_table(key, entry),
                "",
            ]
    ATOM_RESULTS.with_suffix(".md").write_text("\n".join(lines))
    print(f"wrote {path} and {ATOM_RESULTS.with_suffix('.md')}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--part",
        choices=("graphs", "images", "both", *ATOM_TASKS, "atoms", "all"),
        default="both",
        help="both: graphs and images; atoms: logp and substructure; all: every part",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench_explain.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--model",
        choices=("dmpnn", "gcn"),
        nargs="+",
        default=["dmpnn"],
        help="atom parts: the molecule example's default model (dmpnn) and / or "
        "explain_molecule.py's (gcn)",
    )
    parser.add_argument(
        "--readout",
        choices=LOGP_READOUTS,
        default="auto",
        help="the D-MPNN's readout on logP (auto: the tool's rule); results under their own key",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs of the atom parts (default: each recipe's own, see the docstring)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="atom parts on 400 molecules, 2 epochs, 8 explained: a smoke test (numbers "
        "meaningless; the results files under benchmarks/results/ are not written)",
    )
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="combine the JSON of one-seed runs and exit"
    )
    args = parser.parse_args(argv)
    if args.merge:
        results = merge(args.merge)
        if "graphs" in results:
            print_graph_table(results["graphs"])
        if any(key in results for key in _atom_keys()):
            write_atom_results(results)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        return results
    torch.set_num_threads(args.threads)  # tiny graphs: more threads only add overhead
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, load average "
        f"{os.getloadavg()[0]:.1f} at the start",
        "seeds": args.seeds,
    }
    if args.part in ("graphs", "both", "all"):
        graph_runs = [explain_graphs(seed) for seed in args.seeds]
        results["graphs"] = summarise(graph_runs)
        print_graph_table(results["graphs"])
    if args.part in ("images", "both", "all"):
        image_runs = [explain_images(seed) for seed in args.seeds]
        results["images"] = summarise(image_runs)
        print(json.dumps(results["images"], indent=1))
    for task in ATOM_TASKS:
        if args.part not in (task, "atoms", "all"):
            continue
        for model_kind in args.model:
            sizes = dict(explained=8, pyg_explained=2, limit=400) if args.quick else {}
            runs = [
                explain_atoms(
                    task,
                    seed,
                    2 if args.quick else args.epochs,
                    sizes.get("explained", ATOMS_EXPLAINED),
                    sizes.get("pyg_explained", PYG_EXPLAINED),
                    sizes.get("limit"),
                    model_kind,
                    args.readout,
                )
                for seed in args.seeds
            ]
            key = task if model_kind == "dmpnn" else f"{task}_{model_kind}"
            if key == "logp":  # by the readout used: auto's choice, or --readout's
                key = f"logp_{runs[0]['readout']}"
            results[key] = summarise(runs)
            print("\n".join(atom_table(key, results[key])), flush=True)
            if not args.quick:  # each part as soon as it is done
                machine = results["machine"]
                results["machine"] += f", {os.getloadavg()[0]:.1f} at the end"
                write_atom_results(results, [key])
                results["machine"] = machine
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
