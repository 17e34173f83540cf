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

Accuracies and AUROCs are mean +- sd over the seeds; times are medians over seeds on whatever
machine runs this (say in the results whether it was busy).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
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
    Saliency,
    ScoreCAM,
)
from gconv.models import GNN
from gconv.train import Trainer, seed_everything

# ----------------------------------------------------------------------------- configuration
NUM_GRAPHS = 1000  # 800 train / 100 validation / 100 test
BASE_NODES = 20
FEATURES = 10
EPOCHS = 20
GNN_EXPLAINER_EPOCHS = 100  # PyG's default is 100
IMAGE_EPOCHS = 3
IMAGES_EXPLAINED = 100


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


def pyg_explainers(model: torch.nn.Module) -> dict:
    from torch_geometric.explain import CaptumExplainer, Explainer, GNNExplainer

    config = dict(mode="multiclass_classification", task_level="graph", return_type="raw")

    def make(algorithm, node_mask_type):
        return Explainer(
            model,
            algorithm,
            explanation_type="model",
            node_mask_type=node_mask_type,
            edge_mask_type=None,
            model_config=config,
        )

    return {
        "PyG GNNExplainer": make(GNNExplainer(epochs=GNN_EXPLAINER_EPOCHS), "object"),
        "PyG Captum integrated gradients": make(
            CaptumExplainer("IntegratedGradients"), "attributes"
        ),
        "PyG Captum saliency": make(CaptumExplainer("Saliency"), "attributes"),
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


# ----------------------------------------------------------------------------- report
def summarise(runs: list[dict]) -> dict:
    """Mean and sd of every number across seeds (median for times)."""
    summary: dict = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        if isinstance(values[0], dict):
            summary[key] = summarise(values)
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
    for part in ("graphs", "images"):
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--part", choices=("graphs", "images", "both"), default="both")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_explain.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="combine the JSON of one-seed runs and exit"
    )
    args = parser.parse_args(argv)
    if args.merge:
        results = merge(args.merge)
        if "graphs" in results:
            print_graph_table(results["graphs"])
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        return results
    torch.set_num_threads(args.threads)  # tiny graphs: more threads only add overhead
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}",
        "seeds": args.seeds,
    }
    if args.part in ("graphs", "both"):
        graph_runs = [explain_graphs(seed) for seed in args.seeds]
        results["graphs"] = summarise(graph_runs)
        print_graph_table(results["graphs"])
    if args.part in ("images", "both"):
        image_runs = [explain_images(seed) for seed in args.seeds]
        results["images"] = summarise(image_runs)
        print(json.dumps(results["images"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
