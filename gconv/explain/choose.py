"""Which explainer to use for a graph model: the best of gconv's methods for the model at hand, as
measured against known per-atom truth (``benchmarks/bench_explain.py --part atoms``; its tables
are in ``benchmarks/results/explain_atoms.md``), with the reason in one sentence, so an example
or a command can say what it explained with and why."""

from __future__ import annotations

from torch import nn

from gconv.explain.decomposition import ReadoutDecomposition, is_linear_readout
from gconv.explain.find_layers import find_readout
from gconv.explain.gradient import IntegratedGradients

__all__ = ["recommended_explainer"]


def recommended_explainer(model: nn.Module) -> tuple[object, str]:
    """``(explainer, reason)``: the explainer gconv recommends for a graph model, and why.

    * A readout linear in the node embeddings (sum, norm, mean) followed by one ``nn.Linear``
      (``GNN(head_hidden=())``): :class:`~gconv.explain.ReadoutDecomposition`. Each atom gets
      its exact share of the prediction (CAM's map, as shares that add up to the prediction
      minus the empty molecule's), with no quadrature, in one forward pass.
    * Anything else (an MLP head, as the molecule example's default model has; a max, mean+max,
      attention or Set2Set readout): :class:`~gconv.explain.IntegratedGradients` from zero
      atom features, signed and complete (its steps chosen until every molecule's
      convergence delta is small). On the molecule example's D-MPNN with its MLP head it is the
      method closest to the known atom contributions of Crippen logP; the exact decomposition of
      that model is far from them, because its atom embeddings carry their neighbours'
      contributions (see :mod:`~gconv.explain.decomposition`).
    """
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
    elif isinstance(head, nn.Module) and type(head) is not nn.Linear:
        what = "an MLP head"
    else:
        what = "no single Linear head after its readout"
    return IntegratedGradients(model), (
        f"{type(model).__name__} has {what}: integrated gradients from zero atom features are "
        "the closest of gconv's methods to known atom contributions for such models"
    )
