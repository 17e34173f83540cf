r"""One scaler for targets and descriptors: per-column standardisation fitted on the training split.

:class:`Standardizer` computes :math:`z = (v - \mu) / \sigma` per column with the statistics
of scikit-learn's :class:`~sklearn.preprocessing.StandardScaler` (which ignores NaN when fitting
and gives constant columns :math:`\sigma = 1`). The same class serves both uses:

* **targets** (``Standardizer.fit(train.y)``): missing labels stay NaN, to be masked in the loss;
  :meth:`~Standardizer.inverse_transform` maps model outputs back to the original units
  (``center=False`` for a model that is a sum of per-atom terms: scaled, not centred).
* **descriptors** (``Standardizer.fit(values, clip=5.0, fill_nan=0.0)``): missing values become
  the training mean and heavy tails are clipped, so a model never sees NaN or extreme inputs.

Tensors are scaled as tensors (on their device, with float32 statistics), anything else as
NumPy arrays (in float64, returned as float32).

Example::

    >>> standardizer = Standardizer.fit(train.y)
    >>> train_scaled = train.standardized(standardizer)
    >>> scaler = Standardizer.fit(rdkit_descriptors(train.smiles), clip=5.0, fill_nan=0.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["Standardizer"]


def _float64(values: Any) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


class Standardizer:
    r"""Per-column standardisation :math:`z = (v - \mu) / \sigma`, fitted while ignoring NaN.

    Fit it on the training split only (:meth:`fit`). Columns with zero spread (or a single
    value) get :math:`\sigma = 1`, as in scikit-learn. NaN values (missing labels) come out NaN,
    unless ``fill_nan`` replaces them; ``clip`` then bounds the result to :math:`[-c, c]`.

    Args:
        mean (array-like): Per-column means, shape ``[D]``.
        std (array-like): Per-column standard deviations, shape ``[D]``.
        clip (float, optional): The bound :math:`c` of the standardised values.
            (default: :obj:`None`, no clipping)
        fill_nan (float, optional): What NaN becomes after standardising (``0.0``: the training
            mean). (default: :obj:`None`, NaN stays NaN)

    Attributes:
        mean (Tensor): float32 ``[D]``.
        std (Tensor): float32 ``[D]``.
    """

    def __init__(
        self,
        mean: Any,
        std: Any,
        clip: float | None = None,
        fill_nan: float | None = None,
    ) -> None:
        # float64 is the master copy (the NumPy path computes with it, state_dict stores it);
        # the float32 tensors are what tensors are scaled with.
        self._mean = _float64(mean).reshape(-1)
        self._std = _float64(std).reshape(-1)
        if self._mean.shape != self._std.shape:
            raise ValueError(
                f"{type(self).__name__} expected mean and std of equal shape, got "
                f"{tuple(self._mean.shape)} and {tuple(self._std.shape)}"
            )
        if clip is not None and not clip > 0:
            raise ValueError(f"{type(self).__name__} expected clip > 0, got {clip!r}")
        self.clip = None if clip is None else float(clip)
        self.fill_nan = None if fill_nan is None else float(fill_nan)
        self.mean = torch.from_numpy(self._mean).float()
        self.std = torch.from_numpy(self._std).float()

    @classmethod
    def fit(
        cls,
        values: Any,
        clip: float | None = None,
        fill_nan: float | None = None,
        center: bool = True,
    ) -> Standardizer:
        """Fits mean and (population) standard deviation per column of ``values`` (``[N, D]``
        or ``[N]``, tensor or array-like), ignoring NaN.

        With ``center=False`` the mean is set to 0 and only the scale is fitted (the standard
        deviation is still the spread around the mean): ``z = v / std``. This is the
        target scaler of a model whose output is a sum of per-atom terms (the ``atomwise``
        readout): it has no intercept of its own, an empty molecule predicts 0, and the terms
        times ``std`` add up to the prediction in the target's units.

        Raises:
            ValueError: for no rows, an infinite value, or (without ``fill_nan``) a column
                without a single value.
        """
        from sklearn.preprocessing import StandardScaler

        array = _float64(values)
        array = array[:, None] if array.ndim == 1 else array
        if array.ndim != 2 or array.shape[0] == 0:
            raise ValueError(f"{cls.__name__}.fit expected values [N, D], got {array.shape}")
        infinite = np.isinf(array).any(axis=0).nonzero()[0].tolist()
        if infinite:
            raise ValueError(
                f"{cls.__name__}.fit got infinite values in columns {infinite}; use NaN for a "
                "missing value"
            )
        empty = np.isnan(array).all(axis=0).nonzero()[0].tolist()
        if empty and fill_nan is None:
            raise ValueError(
                f"{cls.__name__}.fit got no labelled values for tasks {empty} (pass fill_nan= to "
                "fill such columns instead)"
            )
        with np.errstate(invalid="ignore"):  # sklearn divides by zero counts in empty columns
            scaler = StandardScaler().fit(array)
        mean = scaler.mean_ if center else np.zeros_like(scaler.mean_)
        return cls(mean, scaler.scale_, clip=clip, fill_nan=fill_nan)

    @property
    def num_features(self) -> int:
        """The number of columns ``D``."""
        return len(self._mean)

    def _check_columns(self, shape: tuple[int, ...]) -> None:
        # One column broadcasts against anything ([N] targets of one task included).
        if self.num_features != 1 and (len(shape) == 0 or shape[-1] != self.num_features):
            raise ValueError(
                f"{type(self).__name__} expected values [N, {self.num_features}], got "
                f"{tuple(shape)}"
            )

    def transform(self, values: Any) -> Any:
        """``[N, D]`` values -> standardised values: a tensor on the same device for a tensor,
        else a float32 array."""
        if isinstance(values, Tensor):
            self._check_columns(tuple(values.shape))
            z = (values - self.mean.to(values.device)) / self.std.to(values.device)
            if self.fill_nan is not None:
                z = torch.nan_to_num(z, nan=self.fill_nan)
            return z if self.clip is None else z.clamp(-self.clip, self.clip)
        array = _float64(values)
        self._check_columns(array.shape)
        z = (array - self._mean) / self._std
        if self.fill_nan is not None:
            z = np.nan_to_num(z, nan=self.fill_nan)
        if self.clip is not None:
            z = np.clip(z, -self.clip, self.clip)
        return z.astype(np.float32)

    def inverse_transform(self, z: Any) -> Any:
        """Standardised values (e.g. model outputs) -> original units (clipping and filled NaN
        are not undone)."""
        if isinstance(z, Tensor):
            return z * self.std.to(z.device) + self.mean.to(z.device)
        array = _float64(z)
        self._check_columns(array.shape)
        return (array * self._std + self._mean).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        """The statistics (float64 tensors), plus ``clip`` / ``fill_nan`` where set; loadable
        with ``torch.load(weights_only=True)``."""
        state: dict[str, Any] = {
            "mean": torch.from_numpy(self._mean.copy()),
            "std": torch.from_numpy(self._std.copy()),
        }
        if self.clip is not None:
            state["clip"] = self.clip
        if self.fill_nan is not None:
            state["fill_nan"] = self.fill_nan
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Standardizer:
        return cls(state["mean"], state["std"], state.get("clip"), state.get("fill_nan"))

    def __repr__(self) -> str:
        if self.num_features <= 8:
            stats = f"mean={self.mean.tolist()}, std={self.std.tolist()}"
        else:  # 200 descriptors would print 400 numbers
            stats = f"num_features={self.num_features}"
        options = "".join(
            f", {name}={value}"
            for name, value in (("clip", self.clip), ("fill_nan", self.fill_nan))
            if value is not None
        )
        return f"{self.__class__.__name__}({stats}{options})"
