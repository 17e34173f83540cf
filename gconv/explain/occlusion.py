r"""Atom occlusion: what the prediction loses when one atom is taken out of the molecule, with its
bonds — the slow, model-agnostic reference the other graph explainers are compared with.

.. math::
    c_i = y^c(G) - y^c(G \setminus i)

where :math:`G \setminus i` is the graph without node :math:`i` and its edges
(:func:`~gconv.explain.core.remove_nodes`, as the deletion curves remove atoms: an empty molecule
predicts near the training mean, zeroed features do not). Signed: positive where the atom raises
the target score. No completeness: the effects of removing atoms one at a time do not add up to
removing them all (neighbours' embeddings change with each removal).

Cost: one forward pass of the whole batch per atom position, as many as the largest graph has
atoms (position :math:`k` of every graph removed at once); every graph's values are its own, the
same alone as in any batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data.data import BaseData
from torch_geometric.explain import Explanation

from gconv._utils import evaluating
from gconv.explain._utils import check_inputs, compute_dtype
from gconv.explain.core import graph_batch, graph_explanations, remove_nodes
from gconv.explain.targets import TargetSpec, as_target, target_index

__all__ = ["Occlusion"]


class Occlusion:
    r"""Atom (node) occlusion for graph models: the drop of the target score when node
    :math:`i` is removed with its edges, :math:`c_i = y^c(G) - y^c(G \setminus i)`.

    ``Occlusion(model)(batch, target=None)`` returns one PyG ``Explanation`` per graph with
    ``node_mask`` ``[N, 1]``, signed and raw (not normalised).

    Args:
        model (torch.nn.Module): a graph model ``model(data) -> [num_graphs, K]`` that accepts
            graphs with nodes removed (and empty graphs, for one-atom molecules).
    """

    def __init__(self, model: nn.Module):
        self.model = model

    @torch.no_grad()
    def __call__(self, inputs: BaseData, target: TargetSpec = None) -> Explanation:
        """Per-node occlusion scores for a PyG ``Data`` / ``Batch``."""
        check_inputs(inputs)
        if not isinstance(inputs, BaseData):
            raise TypeError(
                "Occlusion removes nodes of graphs: expected a PyG Data / Batch, got images of "
                f"shape {tuple(inputs.shape)}"
            )
        with evaluating(self.model):
            output = self.model(inputs)
            score_fn = as_target(target, output)
            full = score_fn(output)
            acc = compute_dtype(full.dtype)
            num_graphs = output.size(0)
            batch = graph_batch(inputs)
            sizes = torch.bincount(batch, minlength=num_graphs)
            position = (
                torch.arange(batch.numel(), device=batch.device) - (sizes.cumsum(0) - sizes)[batch]
            )
            contributions = torch.zeros(batch.numel(), dtype=acc, device=batch.device)
            for k in range(int(sizes.max()) if sizes.numel() else 0):
                removed = position == k
                scores = score_fn(self.model(remove_nodes(inputs, removed)))
                contributions[removed] = (full.to(acc) - scores.to(acc))[batch[removed]]
        return graph_explanations(
            inputs, contributions[:, None], target_index(score_fn, num_graphs), output
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"
