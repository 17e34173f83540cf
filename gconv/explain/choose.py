"""Which explainer to use for a graph model: the best of gconv's methods for the model at hand, as
measured against known per-atom truth (``benchmarks/bench_explain.py --part atoms``; its tables
are in ``benchmarks/results/explain_atoms.md``), with the reason in one sentence, so an example
or a command can say what it explained with and why."""

from __future__ import annotations

from torch import nn

from gconv.explain.decomposition import ReadoutDecomposition, is_linear_readout
from gconv.explain.find_layers import find_readout
from gconv.explain.gradient import IntegratedGradients, Saliency
from gconv.layers.readout import AtomwiseReadout

__all__ = ["recommended_explainer"]


def recommended_explainer(model: nn.Module, task: str = "regression") -> tuple[object, str]:
    """``(explainer, reason)``: the explainer gconv recommends for a graph model, and why.

    * An atomwise model (``GNN(readout="atomwise")``, the molecule tool's default for an
      additive regression target) with an MLP head: as any other MLP-head model below
      (integrated gradients; saliency for a classifier, not measured on an atomwise one),
      **not** the exact decomposition.
      :class:`~gconv.explain.ReadoutDecomposition` reads such a model exactly (each atom's term,
      the terms adding up to the prediction itself) and is there for that, but on Crippen logP
      the exact terms were further from the known atom contributions than integrated gradients
      from zero atom features, on validation molecules (``benchmarks/bench_atomwise.py``, three
      seeds: per-molecule Pearson r 0.66 ± 0.02 against 0.75 ± 0.04; occlusion 0.74 ± 0.04;
      the scaffold test molecules of ``bench_explain.py`` agree: 0.69 ± 0.04 against
      0.80 ± 0.06). The model keeps part of an atom's Crippen share in a neighbour's term (a
      sum over atoms does not say which of two bonded atoms carries it); integrated gradients
      credit an atom's features with their effect on the neighbours' terms as well, which is
      closer to Crippen's typing of an atom by its neighbours.
    * A readout linear in the node embeddings (sum, norm, mean) followed by one ``nn.Linear``
      (``GNN(head_hidden=())``): :class:`~gconv.explain.ReadoutDecomposition`. Each atom gets
      its exact share of the prediction (CAM's map, as shares that add up to the prediction
      minus the empty molecule's), in one forward pass. Measured on
      ``examples/explain_molecule.py``'s GCN: atom AUROC 0.997 on a substructure rule.
    * Any other model (an MLP head, as the molecule tool's models have; a max, mean+max,
      attention or Set2Set readout), ``task="regression"``:
      :class:`~gconv.explain.IntegratedGradients` from zero atom features, signed and complete.
      On the molecule tool's D-MPNN with the norm readout (its additive default before
      atomwise) trained on Crippen logP it is the closest of gconv's
      methods to the known atom contributions (per-molecule Pearson r 0.76 ± 0.09 over three
      seeds; occlusion 0.67, the exact decomposition of that model 0.34, as its atom embeddings
      carry their neighbours' contributions: see :mod:`~gconv.explain.decomposition`). Compared
      on validation molecules (seeds 0 and 1) with integrated gradients from a mean training
      atom and from zero atom and bond features (bonds credited to an atom), and (seed 0) with
      sampled atom Shapley values and leave-one-out: none consistently better (each gained on
      one seed and lost on the other; at most 0.02 on the mean of the two). No method reaches
      0.9 on this benchmark, on either readout: one value per atom type fitted to the training
      molecules' logP with the model's atom features as types reaches 0.69 (with Crippen's own
      types, 1.00), and one value per atom environment of radius 1 or 2 reaches 0.78 although
      those environments determine Crippen's types (Crippen's values are one of the exact fits):
      molecule values do not decide how value is split between atoms that occur together, and
      a model trained on them splits it its own way.
    * Any other model, ``task="classification"``: :class:`~gconv.explain.Saliency`, the
      magnitude of the logit's gradient per atom (unsigned). On the same D-MPNN trained on a
      substructure rule it finds the rule's atoms best (atom AUROC 0.996, integrated gradients
      0.90, occlusion 0.94) at a fraction of a millisecond per molecule.

    Args:
        model (torch.nn.Module): a graph model.
        task (str, optional): ``"regression"`` (signed contributions to a value) or
            ``"classification"`` (which atoms a class logit depends on).
            (default: :obj:`"regression"`)
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    try:
        readout = find_readout(model)[1]
    except ValueError:
        readout = None
    head = getattr(model, "head", None)
    if readout is not None and is_linear_readout(readout) and type(head) is nn.Linear:
        return ReadoutDecomposition(model), (
            f"its {type(readout).__name__} and single Linear head make the prediction a sum of "
            "atom shares: they are read exactly"
        )
    if readout is None:
        what = "no readout to decompose"
    elif not is_linear_readout(readout):
        what = f"a {type(readout).__name__}, not a sum / norm / mean readout"
    elif isinstance(readout, AtomwiseReadout):  # exact terms, further from known contributions
        what = (
            "an atomwise readout with an MLP head (ReadoutDecomposition reads its atom terms "
            "exactly, but they matched known contributions less closely)"
        )
    elif isinstance(head, nn.Module) and type(head) is not nn.Linear:
        what = "an MLP head"
    else:
        what = "no single Linear head after its readout"
    if task == "classification":
        return Saliency(model), (
            f"{type(model).__name__} has {what}: the size of the logit's gradient per atom "
            "found a classifier's ground-truth atoms best of gconv's methods for such models"
        )
    return IntegratedGradients(model), (
        f"{type(model).__name__} has {what}: integrated gradients from zero atom features are "
        "the closest of gconv's methods to known atom contributions for such models"
    )
