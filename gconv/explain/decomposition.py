r"""Per-atom contributions read from the readout: the exact split of a graph model's output over
its node embeddings, for models whose readout is linear in them (sum, norm, mean), and the
atom terms of an atomwise model.

A graph model of the form :math:`y = f(\mathbf{r})`, with node embeddings :math:`\mathbf{h}_i`
(the readout's input), a readout :math:`\mathbf{r}_g = \sum_{i \in g} s_i \mathbf{h}_i`
(:math:`s_i = 1` for a sum, :math:`1/c` for :class:`~gconv.layers.NormReadout`,
:math:`1/|V_g|` for a mean) and a head :math:`f` (molecule-level descriptors :math:`\mathbf{d}`,
if any, concatenated to :math:`\mathbf{r}` and held fixed: they belong to no atom), gives atom
:math:`i` the contribution

.. math::
    c_i = s_i\, \mathbf{h}_i \cdot \int_0^1 \nabla f\big(\mathbf{r}^0 + \alpha\,
    (\mathbf{r} - \mathbf{r}^0)\big)\, d\alpha, \qquad \mathbf{r}^0 = \mathbf{0},

integrated gradients in *readout space* along the straight path from the empty molecule (every
readout here pools an empty graph to zeros, which is what the deletion curves remove atoms
towards) to the molecule. As :math:`\mathbf{r} - \mathbf{r}^0 = \sum_i s_i \mathbf{h}_i`, the
contributions are **complete**: :math:`\sum_{i \in g} c_i = f(\mathbf{r}) - f(\mathbf{r}^0)`,
the prediction minus the empty molecule's (``explanation.baseline_score``). Message passing is
not re-run: one forward pass, then the head alone along the path.

**Which model gets which guarantee.**

* An atomwise model (``GNN(readout="atomwise")``: the head runs on every atom's embedding and
  the readout sums its outputs, :math:`y = \frac{1}{c} \sum_i f(\mathbf{h}_i)`): the readout's
  output is the model's, the path is the identity and :math:`c_i = f(\mathbf{h}_i) / c`, the
  atom's own term, exactly and whatever the head (an MLP included); the empty molecule scores 0,
  so the contributions add up to the prediction itself. One forward pass.
* A linear head (``GNN(head_hidden=())``): :math:`c_i = s_i\, \mathbf{w}^c \cdot \mathbf{h}_i`
  exactly (CAM's map, scaled by :math:`s_i`); these are also the atoms' Shapley values (the
  game is linear in the atoms).
* An MLP head whose non-linearities are ReLU / LeakyReLU / PReLU (gconv's ``GNN`` head
  ``Linear -> ReLU -> Dropout -> Linear``): :math:`f` is piecewise linear along the path, and
  the integral is summed exactly over its linear pieces (the points where a hidden unit changes
  sign are found layer by layer), so completeness holds to float rounding. The contributions
  are the Aumann-Shapley values of the atoms' embeddings for the head.
* Any other head (GELU, SiLU, tanh, normalisation layers), or code between the readout and
  ``model.head``: Gauss-Legendre quadrature, its number of steps doubled for each graph until
  ``|convergence delta| <= atol + rtol |f(r) - f(r^0)|`` (as
  :class:`~gconv.explain.IntegratedGradients`).
* Readouts that are not linear in the embeddings (max, mean+max, attention, Set2Set) are
  refused; :class:`~gconv.explain.IntegratedGradients` with ``baseline="empty"`` and
  :class:`~gconv.explain.Occlusion` take any readout.

**What is explained.** The split is exact for the model's own representation: atom :math:`i`'s
share is the share of *its embedding*, and :math:`\mathbf{h}_i` already mixes its neighbourhood
(a D-MPNN of depth 3 sees up to 3 bonds away). Crippen's logP gives an atom a type fixed by its
neighbours, so a model *could* keep each atom's contribution in its own embedding, but nothing
in training asks it to: a sum over atoms is the same whichever atom carries a share. Measured
(``benchmarks/bench_explain.py --part atoms``, scaffold test molecules, 3 seeds): on the molecule
example's D-MPNN with its MLP head trained on Crippen logP, the per-molecule Pearson r of the
decomposition with the Crippen atom contributions is 0.34 ± 0.01 (Grad-CAM, which weighs the
same embeddings, the same), against 0.76 ± 0.09 for integrated gradients from zero atom features;
a least-squares fit of the decomposition on the contributions gives an atom's own one a weight
of 0.10-0.11 and each neighbour's as much, 0.11-0.14 (seeds 0, 1; standardised target): the
D-MPNN keeps a neighbour's share in the message it passes. An atomwise model (the molecule
tool's default for an additive target) is read exactly too, and its terms come closer: 0.69 ±
0.04 on the same test molecules (0.66 ± 0.02 on validation molecules,
``benchmarks/bench_atomwise.py``), still below integrated gradients from zero atom features on
the same model (0.80 ± 0.06; validation 0.75 ± 0.04): its atom embeddings also see three bonds
away, and a sum over atoms does not say which of two bonded atoms carries a share. On
``examples/explain_molecule.py``'s GCN (mean readout, one Linear head) the decomposition is
among the best (atom AUROC 0.997 on a substructure rule). Hence
:func:`~gconv.explain.recommended_explainer` picks it only for a linear head.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data.data import BaseData
from torch_geometric.explain import Explanation

from gconv._utils import evaluating
from gconv.explain._utils import check_finite, check_inputs, check_tolerances, compute_dtype
from gconv.explain.core import graph_batch, graph_explanations
from gconv.explain.find_layers import find_readout
from gconv.explain.targets import Target, TargetSpec, as_target, target_index

__all__ = ["ReadoutDecomposition", "is_linear_readout"]

#: Head modules through which the path integral is summed exactly (piecewise linear), and the
#: ones among them that bend (at 0).
_PIECEWISE_LINEAR = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Identity, nn.Dropout)
_KINKS = (nn.ReLU, nn.LeakyReLU, nn.PReLU)


def is_linear_readout(module: nn.Module) -> bool:
    """Whether ``module`` pools node embeddings linearly (a sum, a scaled sum or a mean):
    :class:`~gconv.layers.SumReadout`, :class:`~gconv.layers.NormReadout`,
    :class:`~gconv.layers.MeanReadout` and PyG's ``SumAggregation`` / ``MeanAggregation``."""
    from torch_geometric.nn.aggr import MeanAggregation, SumAggregation

    from gconv.layers.readout import MeanReadout, SumReadout

    return isinstance(module, (SumReadout, MeanReadout, SumAggregation, MeanAggregation))


@dataclass
class _Forward:
    """What one forward pass left at the readout and the head."""

    output: Tensor
    embeddings: Tensor  # the readout's input [N, C]
    args: tuple
    kwargs: dict
    pooled: Tensor  # the readout's output [B, C]
    head_input: Tensor | None
    head_output: Tensor | None


class ReadoutDecomposition:
    r"""Exact per-atom contributions of a graph model with a sum, norm or mean readout (see the
    module docstring for the formula and the guarantee per head).

    ``ReadoutDecomposition(model)(batch, target=None)`` returns one PyG ``Explanation`` per
    graph with ``node_mask`` ``[N, 1]``: the signed contribution of each node to the target score
    (a regression output, or a class logit), raw (not normalised), summing per graph to the score
    minus ``baseline_score`` (the empty molecule's); ``convergence_delta`` is the per-graph gap.

    Args:
        model (torch.nn.Module): a graph model ``model(data) -> [num_graphs, K]``.
        readout (torch.nn.Module or str, optional): its readout; ``model.readout`` or the one
            readout module found (:func:`~gconv.explain.find_layers.find_readout`) when not
            given. (default: :obj:`None`)
        rtol (float, optional): target ``|convergence delta|`` per graph, relative to the
            change of the score it splits, where the path integral is a quadrature (heads that
            are not piecewise linear). (default: :obj:`1e-4`)
        atol (float, optional): the floor of that target, in score units.
            (default: :obj:`1e-6`)
        max_steps (int, optional): most quadrature points tried. (default: :obj:`1024`)

    Attributes (after a call):
        exact (bool): whether the path integral was summed exactly (linear / piecewise-linear
            head fed by the readout) rather than by quadrature.
        steps_used (int): the most head evaluations along the path any graph used (the number
            of linear pieces for an exact integral).
        convergence_delta (Tensor): per-graph completeness gap ``[B]``.
        baseline_score (Tensor): per-graph target score of the empty readout ``[B]``.
    """

    def __init__(
        self,
        model: nn.Module,
        readout: nn.Module | str | None = None,
        rtol: float = 1e-4,
        atol: float = 1e-6,
        max_steps: int = 1024,
    ):
        self.model = model
        self.readout_name, self.readout = find_readout(model, readout)
        if not is_linear_readout(self.readout):
            raise ValueError(
                f"ReadoutDecomposition needs a readout that is linear in the node embeddings "
                f"(sum, norm or mean), but {type(model).__name__}'s readout "
                f"'{self.readout_name}' is {self.readout!r}; use "
                "IntegratedGradients(model, baseline='empty') or Occlusion(model) for it"
            )
        check_tolerances(rtol, atol)
        self.rtol = rtol
        self.atol = atol
        self.max_steps = max_steps
        self.exact: bool | None = None
        self.steps_used: int | None = None
        self.convergence_delta: Tensor | None = None
        self.baseline_score: Tensor | None = None

    # -- the call -----------------------------------------------------------------------------
    def __call__(self, inputs: BaseData, target: TargetSpec = None) -> Explanation:
        """Per-atom contributions for a PyG ``Data`` / ``Batch``."""
        check_inputs(inputs)
        if not isinstance(inputs, BaseData):
            raise TypeError(
                "ReadoutDecomposition explains graph models: expected a PyG Data / Batch, got "
                f"images of shape {tuple(inputs.shape)}"
            )
        with evaluating(self.model):
            record = self._forward(inputs)
            output = record.output
            score_fn = as_target(target, output)
            score = score_fn(output)  # validates the class indices
            acc = compute_dtype(record.pooled.dtype)
            head, extras = self._head(record)
            pooled = record.pooled.to(acc)
            if head is not None:

                def after_readout(r: Tensor) -> Tensor:
                    return head(torch.cat([r, extras], dim=-1).to(record.pooled.dtype))

            else:

                def after_readout(r: Tensor) -> Tensor:
                    return self._rerun(inputs, r.to(record.pooled.dtype))

            start = torch.zeros_like(pooled)  # the empty molecule's readout
            with torch.no_grad():
                baseline_score = score_fn(after_readout(start)).to(acc)
            gap = score.to(acc) - baseline_score
            layers = _piecewise_linear_layers(head) if head is not None else None
            if layers is not None:
                mean_gradient, steps = self._exact(
                    layers, pooled, extras, score_fn, record.pooled.dtype
                )
            else:
                mean_gradient, steps = self._quadrature(after_readout, pooled, gap, score_fn)
            contributions = self._node_contributions(record, mean_gradient)
        check_finite(contributions, type(self).__name__, record.pooled.dtype)
        batch = graph_batch(inputs)
        per_graph = contributions.new_zeros(output.size(0)).index_add_(0, batch, contributions)
        delta = per_graph - gap
        self.exact, self.steps_used = layers is not None, steps
        self.convergence_delta, self.baseline_score = delta.detach(), baseline_score.detach()
        return graph_explanations(
            inputs,
            contributions[:, None],
            target_index(score_fn, output.size(0)),
            output,
            convergence_delta=delta,
            baseline_score=baseline_score,
        )

    # -- one forward with the readout (and head) watched ---------------------------------------
    def _forward(self, inputs: BaseData) -> _Forward:
        seen: dict[str, object] = {"calls": 0}
        head = getattr(self.model, "head", None)

        def at_readout(module, args, kwargs, output):
            seen["calls"] += 1
            seen["args"], seen["kwargs"], seen["pooled"] = args, kwargs, output

        def before_head(module, args):
            seen["head_input"] = args[0] if args and isinstance(args[0], Tensor) else None
            seen["head_calls"] = seen.get("head_calls", 0) + 1

        def after_head(module, args, output):
            seen["head_output"] = output

        handles = [self.readout.register_forward_hook(at_readout, with_kwargs=True)]
        if isinstance(head, nn.Module):
            handles.append(head.register_forward_pre_hook(before_head))
            handles.append(head.register_forward_hook(after_head))
        try:
            with torch.no_grad():
                output = self.model(inputs)
        finally:
            for handle in handles:
                handle.remove()
        if seen["calls"] != 1:
            raise RuntimeError(
                f"ReadoutDecomposition needs the readout '{self.readout_name}' to run once per "
                f"forward, it ran {seen['calls']} times"
            )
        args, kwargs, pooled = seen["args"], seen["kwargs"], seen["pooled"]
        embeddings = args[0] if args else kwargs.get("x")
        num_graphs = output.size(0)
        if (
            not isinstance(embeddings, Tensor)
            or embeddings.dim() != 2
            or embeddings.size(0) != inputs.num_nodes
        ):
            shape = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else None
            raise ValueError(
                f"ReadoutDecomposition expected the readout '{self.readout_name}' to pool node "
                f"embeddings [{inputs.num_nodes}, C], got {shape}"
            )
        if not isinstance(pooled, Tensor) or pooled.shape != (num_graphs, embeddings.size(1)):
            raise ValueError(
                f"ReadoutDecomposition expected the readout '{self.readout_name}' to give one "
                f"vector per graph [{num_graphs}, {embeddings.size(1)}], got "
                f"{tuple(pooled.shape) if isinstance(pooled, Tensor) else type(pooled).__name__}"
            )
        exactly_once = seen.get("head_calls") == 1
        return _Forward(
            output=output.detach(),
            embeddings=embeddings.detach(),
            args=args,
            kwargs=kwargs,
            pooled=pooled.detach(),
            head_input=seen.get("head_input") if exactly_once else None,
            head_output=seen.get("head_output") if exactly_once else None,
        )

    def _head(self, record: _Forward) -> tuple[nn.Module | None, Tensor | None]:
        """``model.head`` and the columns after the readout's (descriptors) when the head's input
        is ``[readout output | extras]`` and its output is the model's: then the path runs the
        head alone; ``nn.Identity()`` and no extras when the readout's output is the model's (an
        atomwise model); otherwise the whole model is re-run with the readout's output replaced."""
        head_input, pooled = record.head_input, record.pooled
        if pooled.shape == record.output.shape and torch.equal(pooled, record.output):
            # the readout's output is the model's: an atomwise model (GNN(readout="atomwise")),
            # whose head ran on every node before the readout; the path is the identity
            return nn.Identity(), pooled.new_zeros(
                pooled.size(0), 0, dtype=compute_dtype(pooled.dtype)
            )
        head = getattr(self.model, "head", None)
        if head_input is None or not isinstance(head, nn.Module):
            return None, None
        channels = pooled.size(1)
        if (
            head_input.dim() == 2
            and head_input.shape[0] == pooled.shape[0]
            and head_input.shape[1] >= channels
            and torch.equal(head_input[:, :channels], pooled)
            and isinstance(record.head_output, Tensor)
            and torch.equal(record.head_output, record.output)
        ):
            return head, head_input[:, channels:].detach().to(compute_dtype(pooled.dtype))
        return None, None

    def _rerun(self, inputs: BaseData, pooled: Tensor) -> Tensor:
        handle = self.readout.register_forward_hook(lambda module, args, output: pooled)
        try:
            return self.model(inputs)
        finally:
            handle.remove()

    # -- the path integral ----------------------------------------------------------------------
    def _exact(
        self,
        layers: list[nn.Module],
        pooled: Tensor,
        extras: Tensor,
        score_fn: Target,
        dtype: torch.dtype,
    ) -> tuple[Tensor, int]:
        """The mean gradient along the path through a piecewise-linear head (run in the model's
        ``dtype``), summed over its linear pieces: ``([B, C], pieces)``."""
        channels = pooled.size(1)
        start = torch.cat([torch.zeros_like(pooled), extras], dim=-1).to(dtype)
        end = torch.cat([pooled, extras], dim=-1).to(dtype)
        points = _linear_pieces(layers, start, end)
        middles = (points[:, :-1] + points[:, 1:]) / 2
        lengths = (points[:, 1:] - points[:, :-1]).to(pooled.dtype)
        gradients = _path_gradients(nn.Sequential(*layers), start, end, middles, score_fn)
        mean_gradient = (lengths[..., None] * gradients.to(pooled.dtype)).sum(dim=1)
        return mean_gradient[:, :channels], int(middles.size(1))

    def _quadrature(
        self, after_readout, pooled: Tensor, gap: Tensor, score_fn: Target
    ) -> tuple[Tensor, int]:
        """Gauss-Legendre quadrature of the gradient along the path, steps doubled from 16 for
        each graph on its own until ``|delta| <= atol + rtol |gap|`` (a graph keeps the first rule at
        which it converged, so its result does not depend on the batch)."""
        steps, mean_gradient, steps_of = 16, None, None
        converged = torch.zeros(pooled.size(0), dtype=torch.bool, device=pooled.device)
        while True:
            points, weights = np.polynomial.legendre.leggauss(steps)
            total = torch.zeros_like(pooled)
            for t, w in zip(((points + 1) / 2).tolist(), (weights / 2).tolist(), strict=True):
                r = (t * pooled).detach().requires_grad_(True)
                with torch.enable_grad():
                    (gradient,) = torch.autograd.grad(score_fn(after_readout(r)).sum(), r)
                total += w * gradient.to(total.dtype)
            if mean_gradient is None:
                mean_gradient, steps_of = total, torch.full_like(converged, steps, dtype=torch.long)
            else:
                update = ~converged
                mean_gradient = torch.where(update[:, None], total, mean_gradient)
                steps_of = torch.where(update, steps, steps_of)
            delta = (pooled * mean_gradient).sum(dim=-1) - gap  # Euler: the readout is linear
            converged = converged | (delta.abs() <= self.atol + self.rtol * gap.abs())
            if bool(converged.all()):
                break
            if steps * 2 > self.max_steps:
                warnings.warn(
                    f"ReadoutDecomposition: the path integral did not converge: |convergence "
                    f"delta| up to {float(delta.abs().max()):.3g} (allowed: {self.atol:g} + "
                    f"{self.rtol:g} x |score change|) "
                    f"after {steps} steps for {int((~converged).sum())} graphs; raise max_steps",
                    RuntimeWarning,
                    stacklevel=3,
                )
                break
            steps *= 2
        return mean_gradient, int(steps_of.max()) if steps_of.numel() else steps

    def _node_contributions(self, record: _Forward, mean_gradient: Tensor) -> Tensor:
        r""":math:`c_i = \mathbf{h}_i \cdot \partial(\mathbf{r} \cdot \bar{\mathbf{g}}) /
        \partial \mathbf{h}_i = s_i\, \mathbf{h}_i \cdot \bar{\mathbf{g}}`, with the readout's
        own weights :math:`s_i` read by differentiating it (one call, any linear readout)."""
        embeddings = record.embeddings.to(mean_gradient.dtype).requires_grad_(True)
        args, kwargs = record.args, dict(record.kwargs)
        if args:
            args = (embeddings, *args[1:])
        else:
            kwargs["x"] = embeddings
        with torch.enable_grad():
            pooled = self.readout(*args, **kwargs)
            (node_gradient,) = torch.autograd.grad((pooled * mean_gradient).sum(), embeddings)
        return (embeddings.detach() * node_gradient).sum(dim=-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(readout='{self.readout_name}')"


# ---------------------------------------------------------------------------------------------
# piecewise-linear heads
# ---------------------------------------------------------------------------------------------
def _piecewise_linear_layers(head: nn.Module) -> list[nn.Module] | None:
    """The head as a flat list of layers when every one is piecewise linear, else ``None``."""
    if isinstance(head, nn.Sequential):
        layers = []
        for module in head:
            inner = _piecewise_linear_layers(module)
            if inner is None:
                return None
            layers += inner
        return layers if layers else None
    if type(head) in _PIECEWISE_LINEAR:  # not subclasses: they may compute something else
        return [head]
    return None


def _linear_pieces(layers: list[nn.Module], start: Tensor, end: Tensor) -> Tensor:
    """Sorted path positions ``[B, P]`` in [0, 1], from 0 to 1, between which the head is
    linear on the segment ``start -> end`` of each row: the zero crossings of every bending
    layer's input, found layer by layer (on each piece of the layers before it, a layer's input
    is linear in the position, so its crossings are where the values at the piece's ends change
    sign). Rows with fewer pieces are padded with 1 (pieces of length 0)."""
    num_rows = start.size(0)
    direction = end - start
    points = torch.tensor([0.0, 1.0], dtype=start.dtype, device=start.device).expand(num_rows, 2)
    with torch.no_grad():
        for index, layer in enumerate(layers):
            if not isinstance(layer, _KINKS):
                continue
            prefix = nn.Sequential(*layers[:index])
            values = prefix(start[:, None] + points[..., None] * direction[:, None])  # [B, P, H]
            low, high = values[:, :-1], values[:, 1:]
            p0, p1 = points[:, :-1, None], points[:, 1:, None]
            crossing = low * high < 0
            fraction = low / torch.where(crossing, low - high, torch.ones_like(low))
            position = torch.minimum(torch.maximum(p0 + (p1 - p0) * fraction, p0), p1)
            new = torch.where(crossing, position, torch.ones_like(position)).flatten(1)
            points = torch.cat([points, new], dim=1).sort(dim=1).values
            inside = int((points < 1).sum(dim=1).max())
            points = points[:, : inside + 1]
    return points


def _path_gradients(
    head: nn.Module, start: Tensor, end: Tensor, positions: Tensor, score_fn: Target
) -> Tensor:
    """Gradients of the target score at ``start + t (end - start)`` for the positions ``[B, P]``
    of each row: ``[B, P, D]``, all in one pass of the head."""
    num_rows, num_points = positions.shape
    x = start[:, None] + positions[..., None] * (end - start)[:, None]  # [B, P, D]
    x = x.transpose(0, 1).detach().requires_grad_(True)  # step-major [P, B, D]
    with torch.enable_grad():
        output = head(x.reshape(num_points * num_rows, -1)).view(num_points, num_rows, -1)
        scores = torch.stack([score_fn(output[p]) for p in range(num_points)])
        (gradients,) = torch.autograd.grad(scores.sum(), x)
    return gradients.transpose(0, 1)
