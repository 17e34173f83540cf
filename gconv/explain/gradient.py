r"""Gradient attributions that are not CAM: saliency and integrated gradients, for images and
graphs alike (torchcam's and Captum's word for the family), with the calling convention of the CAM
methods.

``Method(model)(inputs, target=None)`` returns, for images ``[B, C, H, W]``, maps ``[B, H, W]``
(attributions summed over the input channels), and for a PyG ``Data`` / ``Batch`` a batch of PyG
:class:`~torch_geometric.explain.Explanation` objects, one per graph (``result[g]``,
``result.to_data_list()``), with ``node_mask`` ``[N, F]`` (per node and feature) and, for models
built from ``MessagePassing`` layers, ``edge_mask`` ``[E]`` (the attribution of a weight on each
edge's message, PyG's explain mechanism). Attributions are raw (not normalised): integrated
gradients sum to the change of the score, which normalisation would break.

* :class:`Saliency` — :math:`|\partial y^c / \partial \mathbf{x}|` at the input.
* :class:`IntegratedGradients` — the path integral of the gradient from a baseline, with its
  number of steps chosen until the completeness error (the convergence delta) is small
  relative to the change of the score it splits.

Both are stateless apart from their settings: eval mode for the call and every module's own flag
restored afterwards (:func:`gconv._utils.evaluating`), edge masks removed, gradients taken with
:func:`torch.autograd.grad` (parameter ``.grad`` untouched). Each graph's (image's) attributions
are its own: the same alone as in any batch. For float16 / bfloat16 models the model runs in its
own precision, the attributions are summed in float32 and come back in float32, and non-finite
gradients raise a :class:`RuntimeError` instead of returning NaN.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.data.data import BaseData
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import MessagePassing

from gconv._utils import deprecated_function, evaluating
from gconv.explain._utils import (
    Inputs,
    check_finite,
    check_inputs,
    check_tolerances,
    compute_dtype,
)
from gconv.explain.core import graph_batch, graph_explanations, with_features
from gconv.explain.find_layers import find_readout
from gconv.explain.targets import TargetSpec, as_target, target_index

__all__ = ["Saliency", "IntegratedGradients", "constant_features", "featureless_graphs"]


def _has_message_passing(model: nn.Module) -> bool:
    return any(isinstance(m, MessagePassing) for m in model.modules())


def _float_features(inputs: Inputs) -> Tensor:
    x = inputs.x if isinstance(inputs, BaseData) else inputs
    if not x.is_floating_point():
        raise TypeError(
            f"gradient attributions need float node features (or pixels), got dtype {x.dtype}"
        )
    return x.detach()


def constant_features(inputs: Inputs) -> bool:
    """Whether every node of a PyG batch has the same feature vector (as in structure-only
    benchmarks with ``x = 1``), over the whole batch. :class:`IntegratedGradients` does not use
    it: it decides per graph, with :func:`featureless_graphs`."""
    if not isinstance(inputs, BaseData):
        return False
    x = inputs.x
    return x.size(0) > 0 and bool((x == x[:1]).all())


def featureless_graphs(inputs: BaseData) -> Tensor:
    """Which graphs of a PyG batch have placeholder features, ``[num_graphs]`` bool: every node
    of the graph carries the same feature vector and all its entries are equal (``x = 1``,
    ``x = 0.1 * ones(N, 10)``, as in structure-only benchmarks), so the features say nothing
    about any node. Decided for each graph on its own nodes, never on the rest of the batch.

    A molecule whose atoms are all alike (benzene) is *not* featureless: its one-hot atom
    features are informative (not all entries equal), whatever else is in the batch."""
    x = inputs.x.reshape(inputs.num_nodes, -1)
    batch = graph_batch(inputs)
    num_graphs = getattr(inputs, "num_graphs", None)
    if num_graphs is None:  # a Data: one graph, or as many as its batch vector names
        num_graphs = int(batch.max()) + 1 if batch.numel() else 1
    if x.size(0) == 0 or x.size(1) == 0:
        return torch.zeros(num_graphs, dtype=torch.bool, device=x.device)
    first = x[:, 0]
    alike = (x == first[:, None]).all(dim=1)  # all entries of the node equal (no NaN)
    low = first.new_full((num_graphs,), float("inf")).scatter_reduce(0, batch, first, "amin")
    high = first.new_full((num_graphs,), float("-inf")).scatter_reduce(0, batch, first, "amax")
    all_alike = torch.ones(num_graphs, dtype=torch.bool, device=x.device)
    all_alike = all_alike.scatter_reduce(0, batch, alike, "amin")
    has_nodes = torch.bincount(batch, minlength=num_graphs) > 0
    return has_nodes & all_alike & (low == high)


def _working_dtype(x: Tensor, output: Tensor) -> torch.dtype:
    """The precision the model computed in: float16 / bfloat16 where its inputs or output are
    (``model.half()``, autocast), else the inputs' dtype."""
    low = [t.dtype for t in (x, output) if compute_dtype(t.dtype) != t.dtype]
    return low[0] if low else x.dtype


def _edge_graph(inputs: BaseData) -> Tensor:
    return graph_batch(inputs)[inputs.edge_index[0]]


def _image_maps(attribution: Tensor) -> Tensor:
    return attribution.sum(dim=1)


class Saliency:
    r"""Gradient saliency (`Simonyan et al., 2014 <https://arxiv.org/abs/1312.6034>`_):
    :math:`|\partial y^c / \partial \mathbf{x}_{n,f}|` per node and feature.

    Args:
        model (torch.nn.Module): image or graph model.
        edge_mask (bool, optional): for PyG inputs and ``MessagePassing`` models, also the
            gradient with respect to a weight on every edge's message (at weight 1).
            (default: :obj:`True`)
        absolute (bool, optional): take absolute values. (default: :obj:`True`)
    """

    def __init__(self, model: nn.Module, edge_mask: bool = True, absolute: bool = True):
        self.model = model
        self.edge_mask = edge_mask
        self.absolute = absolute

    def __call__(self, inputs: Inputs, target: TargetSpec = None) -> Tensor | Explanation:
        """Attributions for ``inputs`` (images -> ``[B, H, W]``, graphs -> explanations)."""
        check_inputs(inputs)
        model = self.model
        x = _float_features(inputs).requires_grad_(True)
        use_edges = self.edge_mask and isinstance(inputs, BaseData) and _has_message_passing(model)
        with evaluating(model), torch.enable_grad():
            wrt = [x]
            try:
                if use_edges:
                    edge_weight = torch.ones(
                        inputs.edge_index.size(1), dtype=x.dtype, device=x.device
                    ).requires_grad_(True)
                    set_masks(model, edge_weight, inputs.edge_index, apply_sigmoid=False)
                    wrt.append(edge_weight)
                output = model(with_features(inputs, x))
                score_fn = as_target(target, output)
                grads = torch.autograd.grad(score_fn(output).sum(), wrt, allow_unused=True)
            finally:
                clear_masks(model)
        grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt, strict=True)]
        for grad in grads:
            check_finite(grad, type(self).__name__, _working_dtype(x, output))
        grads = [g.to(compute_dtype(g.dtype)) for g in grads]
        if self.absolute:
            grads = [g.abs() for g in grads]
        if isinstance(inputs, Tensor):
            return _image_maps(grads[0])
        return graph_explanations(
            inputs,
            grads[0],
            target_index(score_fn, output.size(0)),
            output.detach(),
            edge_mask=grads[1] if use_edges else None,
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(edge_mask={self.edge_mask}, absolute={self.absolute})"


class IntegratedGradients:
    r"""Integrated gradients (`Sundararajan et al., 2017 <https://arxiv.org/abs/1703.01365>`_):

    .. math::
        \mathrm{IG}_i = (x_i - x'_i) \int_0^1
        \frac{\partial y^c(\mathbf{x}' + t(\mathbf{x} - \mathbf{x}'))}{\partial x_i}\, dt

    computed with Gauss-Legendre quadrature (Captum's default rule). For PyG inputs and
    ``MessagePassing`` models the path also scales a weight on every edge's message from 0 to 1
    (PyG ``CaptumExplainer``'s ``"node_and_edge"`` masks), so the node and edge attributions of
    each graph sum to :math:`y^c_g(\mathbf{x}) - y^c_g(\text{baseline})`. The gap is the
    **convergence delta**, kept per graph (``explanation.convergence_delta``, and
    ``self.convergence_delta`` after a call). Without a fixed ``n_steps``, the number of steps
    doubles from 16 until

    .. math::
        |\delta_g| \le \mathrm{atol} + \mathrm{rtol}\,|y^c_g(\mathbf{x}) - y^c_g(\text{baseline})|

    (``torch.isclose``'s rule: relative to the change being split, with a floor ``atol`` in
    score units for graphs whose score hardly changes), **for each graph (image) on its own**:
    a classifier's logit that moves by 20 is split to 1 % of that, as a regression output that
    moves by 1 is, instead of one absolute tolerance that is loose for one and unreachable for
    the other (an absolute 0.05 ran classifier logits into ``max_steps``). A graph
    keeps the first quadrature at which it converged, so its attributions are the same alone as
    in any batch (``self.steps_per_sample`` holds each one's steps, ``self.steps_used`` the
    most); a :class:`RuntimeWarning` says so when ``max_steps`` is reached first.

    **Baseline.** ``"auto"`` takes all-zero features (black pixels, atoms with no features) —
    except for graphs whose features are placeholders (:func:`featureless_graphs`: every node
    has the same feature vector with all entries equal, as ``x = 1`` in structure-only
    benchmarks): a path from zero features then scales all nodes together, and which node
    "matters" becomes an accident of the scale (node AUROC 0.3–0.75 across runs on motif
    benchmarks). There the features stay as they are and only the edge weights run from 0 to 1,
    and each node is credited with half of the attribution of every edge it touches, spread
    evenly over its ``F`` (equal) features, so the node scores still sum to the change of the
    score. The choice is made for each graph on its own nodes, so a featureless graph gets the
    same explanation alone as in a batch with featured graphs, and ``node_mask`` is ``[N, F]``
    for every graph. A molecule whose atoms are all alike (benzene) is not featureless: it gets
    per-feature attributions from zero features like any molecule. Models without
    ``MessagePassing`` layers (no edge path) use zero features for every graph.

    **The empty molecule** (``baseline="empty"``, graphs only). Zero features are no molecule
    (a molecule of all-zero atoms is predicted far outside the training range; see
    :mod:`~gconv.explain.faithfulness`); the deletion curves remove atoms instead. This baseline
    walks the same way: every atom gets a presence :math:`m_i` that runs from 0 to 1, scaling its
    embedding where the readout takes it (:func:`~gconv.explain.find_layers.find_readout`) and,
    in ``MessagePassing`` layers, every message along a bond by :math:`m_u m_v`. At
    :math:`m = 0` the readout sees nothing, as for the empty molecule (every gconv readout but
    Set2Set pools zeros to what it gives an empty graph). The attribution is per atom,
    ``node_mask`` ``[N, 1]`` (a bond's effect is credited to its two atoms), and complete:
    each graph's atoms sum to :math:`y^c_g - y^c_g(m = 0)`. For a model whose encoder is not
    built from ``MessagePassing`` layers (gconv's D-MPNN), only the readout's input is scaled,
    and with a sum / norm / mean readout this is the
    :class:`~gconv.explain.ReadoutDecomposition` computed by quadrature (tested).

    **Precision.** float16 / bfloat16 models run in their own precision; the quadrature sums and
    the attributions are float32 (a :class:`RuntimeError` where the model's gradients overflow).

    Args:
        model (torch.nn.Module): image or graph model.
        n_steps (int, optional): fixed number of quadrature points; adaptive when :obj:`None`.
            (default: :obj:`None`)
        baseline (str or float or Tensor, optional): ``"auto"``, ``"zero"``, ``"empty"``
            (graphs: atoms grown from absent, see above) or a value / tensor broadcastable to
            the features. (default: :obj:`"auto"`)
        edge_mask (bool, optional): also attribute to edges where possible. (default: :obj:`True`)
        rtol (float, optional): target ``|convergence delta|`` per graph relative to
            ``|score - baseline score|``. (default: :obj:`0.01`)
        atol (float, optional): the floor of that target, in score units.
            (default: :obj:`0.01`)
        max_steps (int, optional): most quadrature points tried. (default: :obj:`512`)
        steps_per_pass (int, optional): for images, path steps evaluated in one forward pass.
            (default: :obj:`8`)
    """

    def __init__(
        self,
        model: nn.Module,
        n_steps: int | None = None,
        baseline: str | float | Tensor = "auto",
        edge_mask: bool = True,
        rtol: float = 0.01,
        atol: float = 0.01,
        max_steps: int = 512,
        steps_per_pass: int = 8,
    ):
        if n_steps is not None and (not isinstance(n_steps, int) or n_steps < 1):
            raise ValueError(f"n_steps must be a positive int or None, got {n_steps!r}")
        if isinstance(baseline, str) and baseline not in ("auto", "zero", "empty"):
            raise ValueError(
                f"baseline must be 'auto', 'zero', 'empty', a number or a tensor, got {baseline!r}"
            )
        self.model = model
        self.n_steps = n_steps
        self.baseline = baseline
        self.edge_mask = edge_mask
        check_tolerances(rtol, atol)
        self.rtol = rtol
        self.atol = atol
        self.max_steps = max_steps
        self.steps_per_pass = steps_per_pass
        #: per-graph (per-image) convergence delta of the last call
        self.convergence_delta: Tensor | None = None
        #: per-graph (per-image) number of quadrature points of the last call
        self.steps_per_sample: Tensor | None = None
        #: the most quadrature points any graph (image) of the last call used
        self.steps_used: int | None = None

    def __call__(self, inputs: Inputs, target: TargetSpec = None) -> Tensor | Explanation:
        """Attributions for ``inputs`` (images -> ``[B, H, W]``, graphs -> explanations)."""
        check_inputs(inputs)
        x = _float_features(inputs)
        is_graph = isinstance(inputs, BaseData)
        use_edges = self.edge_mask and is_graph and _has_message_passing(self.model)
        empty = isinstance(self.baseline, str) and self.baseline == "empty"
        attribute = self._attribute
        if empty:
            if not is_graph:
                raise TypeError(
                    "baseline='empty' grows the atoms of a graph from absent to present: "
                    "expected a PyG Data / Batch; for images use 'zero' or a value"
                )
            readout = find_readout(self.model)[1]
            attribute = functools.partial(self._attribute_presence, readout)
            use_edges = _has_message_passing(self.model)
        if isinstance(self.baseline, str):
            baseline = torch.zeros_like(x)
        else:
            baseline = torch.as_tensor(self.baseline, dtype=x.dtype, device=x.device).expand_as(x)
        featureless = None  # graphs whose placeholder features stay put (the edges are walked)
        if is_graph and use_edges and isinstance(self.baseline, str) and self.baseline == "auto":
            featureless = featureless_graphs(inputs)
            if bool(featureless.any()):
                baseline = torch.where(featureless[graph_batch(inputs)][:, None], x, baseline)
            else:
                featureless = None
        with evaluating(self.model), torch.enable_grad():
            try:
                with torch.no_grad():
                    output = self.model(inputs)
                score_fn = as_target(target, output)
                score_fn(output)  # validate class indices once, before the path integral
                num_samples = output.size(0)
                # which sample (graph / image) each row of the node and edge attributions is of
                node_sample = graph_batch(inputs) if is_graph else torch.arange(x.size(0))
                node_sample = node_sample.to(x.device)
                edge_sample = _edge_graph(inputs) if use_edges else None
                steps = self.n_steps or min(16, self.max_steps)
                node_attr = edge_attr = delta = steps_of = gap = None
                converged = torch.zeros(num_samples, dtype=torch.bool, device=x.device)
                while True:
                    todo = (~converged).nonzero().flatten()
                    part = None
                    if delta is not None:  # later rules: only the samples still to converge
                        part = _samples(inputs, x, baseline, output, score_fn, todo)
                    if part is None:  # the first rule, or a batch that cannot be split
                        part = (inputs, x, baseline, output, score_fn)
                        todo = torch.arange(num_samples, device=x.device)
                    sub_inputs, sub_x, sub_baseline, sub_output, sub_score_fn = part
                    new_node, new_edge, new_delta, new_gap = attribute(
                        sub_inputs, sub_x, sub_baseline, use_edges, sub_score_fn, steps, sub_output
                    )
                    if delta is None:
                        node_attr, edge_attr, delta, gap = new_node, new_edge, new_delta, new_gap
                        steps_of = torch.full_like(converged, steps, dtype=torch.long)
                    else:  # only the graphs (images) that had not converged take the new rule
                        update = torch.zeros_like(converged)
                        update[todo] = True
                        update &= ~converged
                        node_attr = _take(node_attr, new_node, update[node_sample])
                        if edge_attr is not None:
                            edge_attr = _take(edge_attr, new_edge, update[edge_sample])
                        delta = _take(delta, new_delta, update)
                        gap = _take(gap, new_gap, update)
                        steps_of = torch.where(update, steps, steps_of)
                    if self.n_steps is not None:
                        break
                    allowed = self.atol + self.rtol * gap.abs()
                    converged = converged | (delta.abs() <= allowed)
                    if bool(converged.all()):
                        break
                    if steps * 2 > self.max_steps:
                        warnings.warn(
                            f"integrated gradients did not converge: |convergence delta| up to "
                            f"{float(delta.abs().max()):.3g} (allowed: {self.atol:g} + "
                            f"{self.rtol:g} x |score change|, at most "
                            f"{float(allowed.max()):.3g}) after "
                            f"{steps} steps for {int((~converged).sum())} of {num_samples} "
                            f"samples; raise max_steps or check the model for kinks",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        break
                    steps *= 2
            finally:
                clear_masks(self.model)
        working = _working_dtype(x, output)
        check_finite(node_attr, type(self).__name__, working)
        if edge_attr is not None:
            check_finite(edge_attr, type(self).__name__, working)
        self.convergence_delta, self.steps_per_sample = delta.detach(), steps_of.cpu()
        self.steps_used = int(steps_of.max()) if steps_of.numel() else steps
        if not is_graph:
            return _image_maps(node_attr)
        if featureless is not None:
            # each edge's attribution shared by its two end nodes, and a node's share spread
            # evenly over its (equal) features
            edge_index = inputs.edge_index
            shares = node_attr.new_zeros(inputs.num_nodes)
            shares.index_add_(0, edge_index[0], edge_attr / 2)
            shares.index_add_(0, edge_index[1], edge_attr / 2)
            spread = (shares / node_attr.size(1))[:, None].expand_as(node_attr)
            node_attr = _rows_where(featureless[node_sample], spread, node_attr)
        return graph_explanations(
            inputs,
            node_attr,
            target_index(score_fn, output.size(0)),
            output.detach(),
            edge_mask=edge_attr if use_edges and not empty else None,
            convergence_delta=delta,
        )

    def _attribute(self, inputs, x, baseline, use_edges, score_fn, steps, output):
        """One quadrature with ``steps`` points: (node attribution, edge attribution, delta,
        score change it splits),
        summed in float32 for a float16 / bfloat16 model (``x`` keeps the model's dtype)."""
        points, weights = np.polynomial.legendre.leggauss(steps)
        points, weights = (points + 1) / 2, weights / 2  # from [-1, 1] to [0, 1]
        model = self.model
        difference = x - baseline
        acc = compute_dtype(x.dtype)
        if isinstance(inputs, Tensor):
            total = torch.zeros_like(x, dtype=acc)
            chunk = max(1, self.steps_per_pass)
            for start in range(0, steps, chunk):
                ts = torch.as_tensor(points[start : start + chunk], dtype=x.dtype, device=x.device)
                ws = torch.as_tensor(weights[start : start + chunk], dtype=acc, device=x.device)
                path = (baseline[None] + ts[:, None, None, None, None] * difference[None]).flatten(
                    0, 1
                )
                path.requires_grad_(True)
                scores = torch.cat(
                    [score_fn(model(part)) for part in path.split(x.size(0))]
                )  # step-major
                (grad,) = torch.autograd.grad(scores.sum(), path)
                grad = grad.view(len(ts), *x.shape).to(acc)
                total += (ws[:, None, None, None, None] * grad).sum(dim=0)
            attribution = difference.to(acc) * total
            with torch.no_grad():
                start_scores = score_fn(model(baseline))
            gap = score_fn(output).to(acc) - start_scores.to(acc)
            delta = attribution.flatten(1).sum(dim=1) - gap
            return attribution, None, delta, gap
        num_graphs = output.size(0)
        batch = graph_batch(inputs)
        total_x = torch.zeros_like(x, dtype=acc)
        num_edges = inputs.edge_index.size(1)
        total_w = x.new_zeros(num_edges, dtype=acc)
        for t, w in zip(points.tolist(), weights.tolist(), strict=True):
            node_x = (baseline + t * difference).requires_grad_(True)
            wrt = [node_x]
            if use_edges:
                edge_weight = torch.full((num_edges,), t, dtype=x.dtype, device=x.device)
                edge_weight.requires_grad_(True)
                set_masks(model, edge_weight, inputs.edge_index, apply_sigmoid=False)
                wrt.append(edge_weight)
            scores = score_fn(model(with_features(inputs, node_x)))
            grads = torch.autograd.grad(scores.sum(), wrt, allow_unused=True)
            if grads[0] is not None:
                total_x += w * grads[0].to(acc)
            if use_edges and grads[1] is not None:
                total_w += w * grads[1].to(acc)
        node_attr = difference.to(acc) * total_x
        edge_attr = total_w if use_edges else None
        with torch.no_grad():
            if use_edges:
                set_masks(model, x.new_zeros(num_edges), inputs.edge_index, apply_sigmoid=False)
            start_scores = score_fn(model(with_features(inputs, baseline)))
            clear_masks(model)
        per_graph = x.new_zeros(num_graphs, dtype=acc).index_add_(0, batch, node_attr.sum(dim=-1))
        if edge_attr is not None:
            per_graph.index_add_(0, _edge_graph(inputs), edge_attr)
        gap = score_fn(output).to(acc) - start_scores.to(acc)
        return node_attr, edge_attr, per_graph - gap, gap

    def _attribute_presence(self, readout, inputs, x, baseline, use_edges, score_fn, steps, output):
        """One quadrature over atom presence (``baseline="empty"``): (node attribution
        ``[N, 1]``, ``None``, delta, score change), summed in float32 for a float16 / bfloat16 model."""
        points, weights = np.polynomial.legendre.leggauss(steps)
        points, weights = (points + 1) / 2, weights / 2  # from [-1, 1] to [0, 1]
        model, num_nodes = self.model, inputs.num_nodes
        edge_index = inputs.edge_index
        acc = compute_dtype(x.dtype)
        state = {"presence": None, "calls": 0}

        def scale(module, args, kwargs):
            state["calls"] += 1
            h = args[0] if args else kwargs.get("x")
            if not isinstance(h, Tensor) or h.dim() != 2 or h.size(0) != num_nodes:
                raise ValueError(
                    f"baseline='empty' scales the node embeddings [{num_nodes}, C] that the "
                    f"readout ({type(module).__name__}) takes; it got "
                    f"{tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__}"
                )
            scaled = h * state["presence"][:, None].to(h.dtype)
            return ((scaled, *args[1:]), kwargs) if args else (args, {**kwargs, "x": scaled})

        def forward(presence: Tensor) -> Tensor:
            state["presence"] = presence
            if use_edges:
                weight = presence[edge_index[0]] * presence[edge_index[1]]
                set_masks(model, weight, edge_index, apply_sigmoid=False)
            return score_fn(model(inputs))

        handle = readout.register_forward_pre_hook(scale, with_kwargs=True)
        try:
            total = torch.zeros(num_nodes, dtype=acc, device=x.device)
            for t, w in zip(points.tolist(), weights.tolist(), strict=True):
                presence = torch.full((num_nodes,), t, dtype=x.dtype, device=x.device)
                presence.requires_grad_(True)
                (grad,) = torch.autograd.grad(forward(presence).sum(), presence, allow_unused=True)
                if grad is not None:
                    total += w * grad.to(acc)
            with torch.no_grad():
                start_scores = forward(x.new_zeros(num_nodes))
        finally:
            handle.remove()
            clear_masks(model)
        if state["calls"] == 0:
            raise RuntimeError(
                f"baseline='empty': the readout {type(readout).__name__} did not run"
            )
        per_graph = total.new_zeros(output.size(0)).index_add_(0, graph_batch(inputs), total)
        gap = score_fn(output).to(acc) - start_scores.to(acc)
        return total[:, None], None, per_graph - gap, gap

    def __repr__(self) -> str:
        steps = self.n_steps if self.n_steps is not None else "auto"
        return f"{self.__class__.__name__}(n_steps={steps}, baseline={self.baseline!r})"


def _take(old: Tensor, new: Tensor, rows: Tensor) -> Tensor:
    """``old`` with its ``rows`` (a mask) replaced from ``new``, which holds either every row
    (the whole batch recomputed) or just the replaced ones, in order (the samples recomputed
    alone)."""
    if new.size(0) != old.size(0):
        full = old.clone()
        full[rows] = new.to(old.dtype)
        new = full
    return _rows_where(rows, new, old)


def _samples(inputs, x: Tensor, baseline: Tensor, output: Tensor, score_fn, todo: Tensor):
    """``(inputs, x, baseline, output, target)`` of the samples ``todo`` alone, or ``None``
    where the batch cannot be split: a callable target (it may depend on the whole batch), or
    a graph input that is not a PyG ``Batch``. Each sample's attributions are its own, so a
    sample computed alone is computed as in the batch (tested)."""
    category = getattr(score_fn, "category", None)
    if category is None:
        return None
    index = torch.as_tensor(category, device=output.device).reshape(-1)
    if index.numel() > 1:
        index = index[todo]
    sub_score_fn = type(score_fn)(index)
    if isinstance(inputs, Tensor):
        return inputs[todo], x[todo], baseline[todo], output[todo], sub_score_fn
    if not isinstance(inputs, Batch) or not hasattr(inputs, "_slice_dict"):
        return None
    rows = torch.isin(graph_batch(inputs), todo)
    sub_inputs = Batch.from_data_list(inputs.index_select(todo.cpu()))
    return sub_inputs, x[rows], baseline[rows], output[todo], sub_score_fn


def _rows_where(condition: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """``new`` in the rows (first dimension) where ``condition`` holds, else ``old``."""
    return torch.where(condition.view(-1, *([1] * (new.dim() - 1))), new, old)


# ---------------------------------------------------------------------------------------------
# deprecated function twins of the classes (0.1 names, removed in 0.3)
# ---------------------------------------------------------------------------------------------
def _saliency(
    model: nn.Module,
    inputs: Inputs,
    target: TargetSpec = None,
    edge_mask: bool = True,
    absolute: bool = True,
) -> Tensor | Explanation:
    return Saliency(model, edge_mask=edge_mask, absolute=absolute)(inputs, target)


def _integrated_gradients(
    model: nn.Module,
    inputs: Inputs,
    target: TargetSpec = None,
    n_steps: int | None = None,
    edge_mask: bool = True,
    baseline: str | float | Tensor = "auto",
) -> Tensor | Explanation:
    return IntegratedGradients(model, n_steps=n_steps, baseline=baseline, edge_mask=edge_mask)(
        inputs, target
    )


saliency = deprecated_function(
    _saliency,
    "gconv.explain.saliency",
    "gconv.explain.Saliency(model, edge_mask, absolute)(inputs, target)",
)
integrated_gradients = deprecated_function(
    _integrated_gradients,
    "gconv.explain.integrated_gradients",
    "gconv.explain.IntegratedGradients(model, n_steps, baseline, edge_mask)(inputs, target)",
)
