r"""Class activation maps for image models: CAM, Grad-CAM, Grad-CAM++ and Score-CAM.

One base class, :class:`BaseCAM`, owns the forward/backward hooks (through
:class:`ActivationsAndGradients`), the choice of target layer and target class, the upsampling and
the normalisation; each method overrides only :meth:`BaseCAM.channel_weights`, the weight
:math:`\alpha_k^c` given to each activation map :math:`A_k`:

.. math::
    L^c = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A_k\Big)

The semantics follow `pytorch-grad-cam <https://github.com/jacobgil/pytorch-grad-cam>`_
(``base_cam.py``, ``grad_cam.py``, ``grad_cam_plusplus.py``, ``score_cam.py``): the model is put in
eval mode, the target score is the raw logit of the class (default: the prediction), the map is
ReLU-ed, bilinearly resized to the input size and min-max normalised per image. Results stay
tensors on the model's device.

Use as a context manager so the hooks are removed and the model's train/eval state comes back::

    with GradCAM(model) as cam:
        maps = cam(images)            # [B, H, W] in [0, 1]
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ActivationsAndGradients",
    "ClassifierOutputTarget",
    "BaseCAM",
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
    "resolve_layer",
    "find_target_layer",
    "normalize_maps",
]

log = logging.getLogger(__name__)

Target = Callable[[Tensor], Tensor]

# modules that keep a feature map's spatial layout: a flat Sequential's conv is extended through them
_FEATURE_PRESERVING = (
    nn.BatchNorm2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.Dropout2d,
    nn.Dropout,
    nn.Identity,
)
# modules that belong to a classifier head: a container holding one is not a feature extractor
_HEAD_MODULES = (nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)


# ---------------------------------------------------------------------------------------------
# hooks, layers and targets
# ---------------------------------------------------------------------------------------------
class ActivationsAndGradients:
    r"""Forward hook on one module that saves its output (or its first input) and, through a
    tensor hook, the gradient of the target score with respect to it.

    Args:
        layer (torch.nn.Module): the module to hook.
        use_input (bool, optional): save the module's input instead of its output (CAM reads the
            input of the global-average pool). (default: :obj:`False`)
        keep_gradients (bool, optional): also record gradients. (default: :obj:`True`)
    """

    def __init__(self, layer: nn.Module, use_input: bool = False, keep_gradients: bool = True):
        self.layer = layer
        self.use_input = use_input
        self.keep_gradients = keep_gradients
        self.activations: Tensor | None = None
        self.gradients: Tensor | None = None
        # the call's arguments: graph explainers read the batch vector given to a readout
        self.call_args: tuple = ()
        self.call_kwargs: dict = {}
        self._handle = layer.register_forward_hook(self._save, with_kwargs=True)

    def _save(self, module: nn.Module, inputs: tuple, kwargs: dict, output: Tensor) -> None:
        self.call_args, self.call_kwargs = inputs, kwargs
        tensor = inputs[0] if self.use_input else output
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"expected the hooked layer {type(module).__name__} to "
                f"{'take' if self.use_input else 'return'} a Tensor, got {type(tensor).__name__}"
            )
        # clone: an in-place activation after this layer must not change the saved maps
        self.activations = tensor.detach().clone()
        if self.keep_gradients and tensor.requires_grad:
            tensor.register_hook(self._save_gradient)

    def _save_gradient(self, grad: Tensor) -> None:
        self.gradients = grad.detach()

    def clear(self) -> None:
        """Forget the saved tensors (before the next forward pass)."""
        self.activations = None
        self.gradients = None
        self.call_args, self.call_kwargs = (), {}

    def release(self) -> None:
        """Remove the hook from the module; saved tensors stay readable."""
        self._handle.remove()


class ClassifierOutputTarget:
    r"""Target score: the raw output (logit) of class ``category`` for each sample.

    Args:
        category (int or list of int or Tensor): one class for the whole batch, or one per sample.
    """

    def __init__(self, category: int | Sequence[int] | Tensor):
        self.category = category

    def __call__(self, output: Tensor) -> Tensor:
        num_classes = output.size(-1)
        index = torch.as_tensor(self.category, device=output.device).reshape(-1)
        if index.numel() == 1:
            index = index.expand(output.size(0))
        if index.numel() != output.size(0):
            raise ValueError(
                f"expected one class index per sample ({output.size(0)}), got {index.numel()}"
            )
        if bool(((index < 0) | (index >= num_classes)).any()):
            raise ValueError(
                f"class index out of range: expected 0 <= index < {num_classes} "
                f"(the model has {num_classes} outputs), got {index.tolist()}"
            )
        return output.gather(-1, index.long()[:, None]).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.category})"


def as_target(target: int | Sequence[int] | Tensor | Target | None, output: Tensor) -> Target:
    """``None`` -> the argmax class, an index / indices -> :class:`ClassifierOutputTarget`, a
    callable ``output [B, K] -> scores [B]`` is used as is."""
    if target is None:
        return ClassifierOutputTarget(output.detach().argmax(dim=-1))
    if callable(target):
        return target
    return ClassifierOutputTarget(target)


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """Return the submodule ``layer`` (a module of ``model``, or its dotted name such as
    ``"features.1"``); an unknown name raises an error listing the closest names."""
    modules = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in modules.values()):
            raise ValueError(f"target_layer {type(layer).__name__} is not a submodule of the model")
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"target_layer must be an nn.Module or a str, got {type(layer).__name__}")
    if layer not in modules or layer == "":
        close = difflib.get_close_matches(layer, [n for n in modules if n], n=5, cutoff=0.4)
        hint = f"; did you mean one of {close}?" if close else ""
        raise ValueError(f"model has no layer named '{layer}'{hint}")
    return modules[layer]


def _contains(module: nn.Module, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(m, kinds) for m in module.modules())


def find_target_layer(model: nn.Module) -> tuple[str, nn.Module]:
    r"""The output of the last feature block that contains a ``Conv2d``, as ``(name, module)``.

    Walks down from the model: takes the last child containing a ``Conv2d``; if that child also
    holds head modules (``Linear``, global pooling, ``Flatten``) it descends into it; if the child
    is the ``Conv2d`` itself (a flat ``Sequential``), it extends through the following
    spatial-layout-preserving siblings (norm, activation, pooling). So ``CNN`` -> ``features``,
    torchvision ResNet -> ``layer4``, VGG -> ``features``.
    """
    if not _contains(model, (nn.Conv2d,)):
        raise ValueError(
            f"{type(model).__name__} has no Conv2d layer: CAM methods need a convolutional "
            "feature map; pass target_layer=<module or name> explicitly"
        )
    prefix, module = "", model
    while True:
        children = list(module.named_children())
        index = max(i for i, (_, c) in enumerate(children) if _contains(c, (nn.Conv2d,)))
        name, child = children[index]
        if isinstance(child, nn.Conv2d):
            while index + 1 < len(children) and isinstance(
                children[index + 1][1], _FEATURE_PRESERVING
            ):
                index += 1
            name, child = children[index]
            return prefix + name, child
        if _contains(child, _HEAD_MODULES):
            prefix, module = f"{prefix}{name}.", child
            continue
        return prefix + name, child


def normalize_maps(maps: Tensor) -> Tensor:
    """Min-max normalise each map of ``[B, ...]`` to [0, 1] (a constant map becomes 0).

    The range is clamped to the smallest normal float rather than padded with a fixed epsilon,
    so maps of tiny magnitude (Grad-CAM gradients are often ~1e-4) still reach exactly 1."""
    flat = maps.flatten(1)
    shifted = flat - flat.min(dim=1, keepdim=True).values
    span = shifted.max(dim=1, keepdim=True).values.clamp_min(torch.finfo(maps.dtype).tiny)
    return (shifted / span).view_as(maps)


# ---------------------------------------------------------------------------------------------
# base class
# ---------------------------------------------------------------------------------------------
class BaseCAM:
    r"""Base class of the class-activation-map methods.

    Subclasses implement :meth:`channel_weights`; everything else (hooks, target layer, target
    class, ReLU, upsampling, normalisation, restoring the model) lives here.

    Args:
        model (torch.nn.Module): image model ``[B, C, H, W] -> [B, K]``.
        target_layer (torch.nn.Module or str, optional): the layer whose output maps are weighted,
            as a module or a dotted name; found by :func:`find_target_layer` when not given.
            (default: :obj:`None`)
    """

    uses_gradients: bool = True
    apply_relu: bool = True
    hook_input: bool = False

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None):
        self.model = model
        if target_layer is None:
            name, target_layer = find_target_layer(model)
            log.info("%s: using target layer '%s'", type(self).__name__, name)
        self.target_layer = resolve_layer(model, target_layer)
        # restore every submodule's own flag on exit (some users freeze BatchNorm in eval mode)
        self._training_flags = {m: m.training for m in model.modules()}
        model.eval()
        self.hooks = ActivationsAndGradients(
            self.target_layer, use_input=self.hook_input, keep_gradients=self.uses_gradients
        )

    # -- the one thing each method defines --------------------------------------------------
    def channel_weights(
        self, x: Tensor, activations: Tensor, gradients: Tensor | None, target: Target
    ) -> Tensor:
        r"""Weights :math:`\alpha_k^c` of shape ``[B, C]`` for activations ``[B, C, h, w]``."""
        raise NotImplementedError

    # -- the shared algorithm ----------------------------------------------------------------
    def __call__(
        self,
        x: Tensor,
        target: int | Sequence[int] | Tensor | Target | None = None,
        raw: bool = False,
    ) -> Tensor:
        r"""Class activation maps for a batch.

        Args:
            x (Tensor): input images ``[B, C, H, W]``.
            target (int or list of int or Tensor or callable, optional): class index for all
                samples, one per sample, or a callable ``output [B, K] -> score [B]``; the
                predicted class when not given. (default: :obj:`None`)
            raw (bool, optional): return the weighted sums :math:`\sum_k \alpha_k^c A_k` at the
                layer's resolution ``[B, h, w]``, before ReLU, resizing and normalisation.
                (default: :obj:`False`)

        Returns:
            maps ``[B, H, W]`` in [0, 1] (or raw maps ``[B, h, w]``).
        """
        if x.dim() != 4:
            raise ValueError(f"expected images of shape [B, C, H, W], got {tuple(x.shape)}")
        self.hooks.clear()
        # a leaf input that requires grad: gradients reach the target layer even when the
        # backbone is frozen (requires_grad=False weights)
        x = x.detach().requires_grad_(self.uses_gradients)
        with torch.set_grad_enabled(self.uses_gradients):
            output = self.model(x)
            score_fn = as_target(target, output)
            scores = score_fn(output)
            if self.hooks.activations is None:
                raise RuntimeError(
                    f"target layer {type(self.target_layer).__name__} was not called in forward"
                )
            if self.uses_gradients:
                self.model.zero_grad(set_to_none=True)
                # samples are independent in eval mode, so one backward of the sum gives every
                # sample's own gradient
                scores.sum().backward()
        activations = self.hooks.activations
        if activations.dim() != 4:
            raise ValueError(
                f"expected the target layer to give feature maps [B, C, h, w], got "
                f"{tuple(activations.shape)}; choose a convolutional target_layer"
            )
        gradients = self.hooks.gradients
        if self.uses_gradients and gradients is None:
            raise RuntimeError(
                f"no gradient reached the target layer {type(self.target_layer).__name__}: "
                "does the target score depend on it?"
            )
        with torch.no_grad():
            weights = self.channel_weights(x.detach(), activations, gradients, score_fn)
            maps = torch.einsum("bc,bchw->bhw", weights.to(activations.dtype), activations)
            if raw:
                return maps
            if self.apply_relu:
                maps = maps.clamp_min(0)
            maps = F.interpolate(
                maps[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False
            )[:, 0]
            return normalize_maps(maps)

    # -- lifetime ----------------------------------------------------------------------------
    def release(self) -> None:
        """Remove the hooks and restore the model's train/eval flags."""
        self.hooks.release()
        self.hooks.clear()
        for module, training in self._training_flags.items():
            module.training = training

    def __enter__(self) -> BaseCAM:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(target_layer={type(self.target_layer).__name__})"


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------
def _find_gap_head(model: nn.Module) -> tuple[nn.AdaptiveAvgPool2d, nn.Linear]:
    modules = list(model.modules())
    pools = [m for m in modules if isinstance(m, nn.AdaptiveAvgPool2d)]
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    if not pools or not linears:
        raise ValueError(
            f"CAM needs a global-average-pool + Linear head (AdaptiveAvgPool2d(1) -> Flatten -> "
            f"Linear), but {type(model).__name__} has "
            f"{'no AdaptiveAvgPool2d' if not pools else 'no Linear layer'}; use GradCAM instead"
        )
    pool, linear = pools[-1], linears[-1]
    output_size = pool.output_size
    if output_size not in (1, (1, 1)):
        raise ValueError(
            f"CAM needs a global average pool AdaptiveAvgPool2d(1), got output_size={output_size}"
        )
    if modules.index(linear) < modules.index(pool):
        raise ValueError("CAM needs the last Linear layer after the global-average pool")
    return pool, linear


class CAM(BaseCAM):
    r"""Class activation mapping from `"Learning Deep Features for Discriminative Localization"
    <https://arxiv.org/abs/1512.04150>`_ (Zhou et al., 2016).

    For a model ending in global-average pooling and one linear layer, the class score is
    :math:`y^c = \sum_k w_k^c \frac{1}{hw}\sum_{i,j} A_k(i,j) + b^c`, and the map is

    .. math::
        M^c(i, j) = \sum_k w_k^c A_k(i, j)

    with :math:`A_k` the input of the ``AdaptiveAvgPool2d`` and :math:`w^c` the row of the last
    ``nn.Linear``. No gradients are needed; the map is not ReLU-ed before normalisation.

    Args:
        model (torch.nn.Module): an image model with a GAP + Linear head.
        target_layer (torch.nn.Module or str, optional): the ``AdaptiveAvgPool2d`` whose input is
            used; the last one when not given. (default: :obj:`None`)
    """

    uses_gradients = False
    apply_relu = False
    hook_input = True

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None):
        pool, self.linear = _find_gap_head(model)
        if target_layer is not None and not isinstance(
            resolve_layer(model, target_layer), nn.AdaptiveAvgPool2d
        ):
            raise ValueError("CAM reads the input of the global-average pool: pass that layer")
        super().__init__(model, target_layer if target_layer is not None else pool)

    def channel_weights(self, x, activations, gradients, target):
        if not isinstance(target, ClassifierOutputTarget):
            raise TypeError("CAM explains a class logit: pass a class index, not a callable")
        if activations.size(1) != self.linear.in_features:
            raise ValueError(
                f"CAM expected the pooled maps to have {self.linear.in_features} channels "
                f"(the Linear head's in_features), got {activations.size(1)}"
            )
        index = torch.as_tensor(target.category, device=activations.device).reshape(-1).long()
        return self.linear.weight[index.expand(activations.size(0))]


class GradCAM(BaseCAM):
    r"""Grad-CAM from `"Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization" <https://arxiv.org/abs/1610.02391>`_ (Selvaraju et al., 2017).

    .. math::
        \alpha_k^c = \frac{1}{hw} \sum_{i,j} \frac{\partial y^c}{\partial A_k(i,j)}

    Args:
        model (torch.nn.Module): image model.
        target_layer (torch.nn.Module or str, optional): layer whose output maps are weighted.
            (default: :obj:`None`, the last convolutional block)
    """

    def channel_weights(self, x, activations, gradients, target):
        return gradients.mean(dim=(2, 3))


class GradCAMPlusPlus(BaseCAM):
    r"""Grad-CAM++ from `"Grad-CAM++: Improved Visual Explanations for Deep Convolutional
    Networks" <https://arxiv.org/abs/1710.11063>`_ (Chattopadhyay et al., 2018), eq. 19 with
    the exponential-score simplification, as in pytorch-grad-cam:

    .. math::
        a_k^{ij} = \frac{g_{ij}^2}{2 g_{ij}^2 + \sum_{a,b} A_k(a,b)\, g_{ij}^3}, \qquad
        \alpha_k^c = \sum_{i,j} a_k^{ij}\, \mathrm{ReLU}(g_{ij}),
        \qquad g_{ij} = \frac{\partial y^c}{\partial A_k(i,j)}

    Args:
        model (torch.nn.Module): image model.
        target_layer (torch.nn.Module or str, optional): layer whose output maps are weighted.
            (default: :obj:`None`, the last convolutional block)
    """

    eps: float = 1e-6

    def channel_weights(self, x, activations, gradients, target):
        grads_2 = gradients.pow(2)
        grads_3 = grads_2 * gradients
        sum_activations = activations.sum(dim=(2, 3), keepdim=True)
        alpha = grads_2 / (2 * grads_2 + sum_activations * grads_3 + self.eps)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        return (gradients.clamp_min(0) * alpha).sum(dim=(2, 3))


class ScoreCAM(BaseCAM):
    r"""Score-CAM from `"Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
    Networks" <https://arxiv.org/abs/1910.01279>`_ (Wang et al., 2020): each activation map,
    upsampled (bilinear, corners aligned) and min-max scaled, masks the input; the target scores
    of the masked inputs, softmax-ed over channels, are the weights. Gradient-free; costs one
    forward pass per channel (in chunks of ``batch_size``).

    Args:
        model (torch.nn.Module): image model.
        target_layer (torch.nn.Module or str, optional): layer whose output maps are weighted.
            (default: :obj:`None`, the last convolutional block)
        batch_size (int, optional): masked inputs per forward pass. (default: :obj:`64`)
    """

    uses_gradients = False

    def __init__(
        self, model: nn.Module, target_layer: nn.Module | str | None = None, batch_size: int = 64
    ):
        super().__init__(model, target_layer)
        self.batch_size = batch_size

    def channel_weights(self, x, activations, gradients, target):
        upsampled = F.interpolate(
            activations, size=x.shape[-2:], mode="bilinear", align_corners=True
        )
        # Score-CAM's own scaling: (A - min) / (max - min + 1e-8)
        flat = upsampled.flatten(2)
        low = flat.min(dim=-1).values[..., None, None]
        high = flat.max(dim=-1).values[..., None, None]
        masks = (upsampled - low) / (high - low + 1e-8)
        scores = []
        for image, image_masks, index in zip(x, masks, range(len(x)), strict=True):
            masked = image[None] * image_masks[:, None]  # [C_layer, C_in, H, W]
            sample_target = _select_sample(target, index)
            for chunk in masked.split(self.batch_size):
                scores.append(sample_target(self.model(chunk)))
        return torch.cat(scores).view(activations.shape[:2]).softmax(dim=-1)


def _select_sample(target: Target, index: int) -> Target:
    """The target of sample ``index`` applied to a batch of its masked copies."""
    if isinstance(target, ClassifierOutputTarget):
        category = torch.as_tensor(target.category).reshape(-1)
        return ClassifierOutputTarget(category[index if category.numel() > 1 else 0])
    return target
