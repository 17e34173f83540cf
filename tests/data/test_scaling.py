"""Tests for gconv.data.scaling: one Standardizer for targets (NaN kept) and descriptors (NaN
filled, clipped), against the 0.1 formulas it replaces."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from gconv.data.scaling import Standardizer


def test_standardizer_round_trip_ignores_nan():
    y = torch.tensor([[1.0, 10.0], [3.0, float("nan")], [5.0, 30.0]])
    standardizer = Standardizer.fit(y)
    assert standardizer.mean.tolist() == pytest.approx([3.0, 20.0])
    assert standardizer.std.tolist() == pytest.approx([math.sqrt(8 / 3), 10.0])
    z = standardizer.transform(y)
    assert torch.isnan(z[1, 1]) and z[[0, 2], 0].tolist() == pytest.approx([-1.2247, 1.2247], 1e-4)
    torch.testing.assert_close(standardizer.inverse_transform(z), y, equal_nan=True)
    restored = Standardizer.from_state_dict(standardizer.state_dict())
    torch.testing.assert_close(restored.mean, standardizer.mean)
    assert Standardizer.fit(torch.ones(4, 1)).std.item() == 1.0  # no spread -> unit std
    with pytest.raises(ValueError, match=r"no labelled values for tasks \[1\]"):
        Standardizer.fit(torch.tensor([[1.0, float("nan")]]))


def test_scaler_uses_training_statistics_fills_nan_and_clips():
    train = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 2.0], [5.0, 5.0, 4.0]])
    scaler = Standardizer.fit(train, clip=3.0, fill_nan=0.0)
    z = scaler.transform(train)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:, 0], [-math.sqrt(1.5), 0.0, math.sqrt(1.5)], rtol=1e-6)
    np.testing.assert_array_equal(z[:, 1], [0.0, 0.0, 0.0])  # constant column: sigma 1
    assert z[0, 2] == 0.0  # NaN becomes the training mean
    far = scaler.transform(np.array([[1e6, 5.0, 3.0]]))
    assert far[0, 0] == 3.0  # clipped
    with pytest.raises(ValueError, match=r"Standardizer expected values \[N, 3\], got \(1, 2\)"):
        scaler.transform(np.zeros((1, 2)))
    assert repr(scaler) == (
        f"Standardizer(mean={scaler.mean.tolist()}, std={scaler.std.tolist()}, clip=3.0, "
        "fill_nan=0.0)"
    )
    assert repr(Standardizer(np.zeros(9), np.ones(9))) == "Standardizer(num_features=9)"


# -- the same numbers as the two 0.1 scalers ---------------------------------------------------


def standardizer_0_1(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gconv 0.1's Standardizer.fit, written out: NaN-aware mean and population std in float64."""
    y = torch.as_tensor(y, dtype=torch.float64)
    y = y.unsqueeze(1) if y.dim() == 1 else y
    observed = ~torch.isnan(y)
    count = observed.sum(dim=0)
    mean = torch.where(observed, y, 0.0).sum(dim=0) / count
    var = torch.where(observed, (y - mean) ** 2, 0.0).sum(dim=0) / count
    std = var.sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.float(), std.float()


def descriptor_scaler_0_1(train: np.ndarray, values: np.ndarray, clip: float) -> np.ndarray:
    """gconv 0.1's DescriptorScaler: scikit-learn, NaN -> 0, clipped, float32."""
    z = StandardScaler().fit(train).transform(values)
    return np.clip(np.nan_to_num(z, nan=0.0), -clip, clip).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_targets_scale_exactly_as_in_0_1(seed):
    rng = np.random.default_rng(seed)
    y = torch.tensor(rng.normal(5.0, 3.0, (200, 3)), dtype=torch.float32)
    y[torch.from_numpy(rng.random((200, 3)) < 0.5)] = float("nan")  # missing multi-task labels
    y[:199, 2] = float("nan")  # a task with one label: sigma 1
    y[0, 2] = 7.0
    for targets in (y, y[:, 0]):  # [N, T] and [N]
        mean, std = standardizer_0_1(targets)
        standardizer = Standardizer.fit(targets)
        assert torch.equal(standardizer.mean, mean) and torch.equal(standardizer.std, std)
        z = standardizer.transform(targets)
        torch.testing.assert_close(z, (targets - mean) / std, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(
            standardizer.inverse_transform(z), z * std + mean, rtol=0, atol=0, equal_nan=True
        )


@pytest.mark.parametrize("clip", [5.0, 1.5])
def test_descriptors_scale_exactly_as_in_0_1(clip):
    rng = np.random.default_rng(0)
    train = rng.standard_t(2, (120, 6)) * [1, 10, 1e3, 1e-3, 1, 1]
    train[rng.random((120, 6)) < 0.2] = np.nan
    train[:, 4] = 0.1  # constant (with rounding in its mean)
    train[:, 5] = np.nan  # never computed on the training split
    other = rng.standard_t(2, (30, 6)) * 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no noise from the column without values
        scaler = Standardizer.fit(train, clip=clip, fill_nan=0.0)
    with np.errstate(invalid="ignore"):  # sklearn itself divides by the empty column's count
        expected = descriptor_scaler_0_1(train, other, clip)
    np.testing.assert_array_equal(scaler.transform(other), expected)
    np.testing.assert_array_equal(scaler.transform(other.tolist()), expected)  # array-like


def test_tensors_and_arrays_agree_and_keep_their_kind():
    rng = np.random.default_rng(1)
    values = rng.normal(2.0, 4.0, (50, 3)).astype(np.float32)
    values[3, 1] = np.nan
    scaler = Standardizer.fit(values, clip=2.0, fill_nan=0.0)
    from_array = scaler.transform(values)
    from_tensor = scaler.transform(torch.from_numpy(values))
    assert isinstance(from_array, np.ndarray) and isinstance(from_tensor, torch.Tensor)
    np.testing.assert_allclose(from_tensor.numpy(), from_array, rtol=1e-6, atol=1e-6)
    assert from_tensor[3, 1] == 0.0 and from_tensor.abs().max() <= 2.0
    back = scaler.inverse_transform(scaler.transform(np.ones((50, 3))))
    np.testing.assert_allclose(back, np.ones((50, 3)), rtol=1e-6)


def test_state_dict_round_trip_is_exact_and_weights_only(tmp_path):
    rng = np.random.default_rng(2)
    values = rng.normal(0.0, 1.0, (40, 4)) * [1e-3, 1.0, 1e3, 7.0]
    scaler = Standardizer.fit(values, clip=4.0, fill_nan=-1.0)
    torch.save(scaler.state_dict(), tmp_path / "scaler.pt")
    restored = Standardizer.from_state_dict(torch.load(tmp_path / "scaler.pt", weights_only=True))
    assert (restored.clip, restored.fill_nan) == (4.0, -1.0)
    np.testing.assert_array_equal(restored.transform(values), scaler.transform(values))
    assert torch.equal(restored.mean, scaler.mean) and torch.equal(restored.std, scaler.std)
    # a 0.1 target state (float32 mean / std, nothing else) still loads
    old = Standardizer.from_state_dict({"mean": torch.tensor([1.5]), "std": torch.tensor([2.0])})
    assert old.clip is None and old.fill_nan is None and old.mean.dtype == torch.float32


def test_fit_and_transform_errors():
    with pytest.raises(
        ValueError, match=r"Standardizer.fit expected values \[N, D\], got \(0, 1\)"
    ):
        Standardizer.fit(torch.empty(0))
    with pytest.raises(ValueError, match=r"infinite values in columns \[1\]; use NaN"):
        Standardizer.fit(np.array([[1.0, np.inf], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="expected clip > 0, got 0"):
        Standardizer.fit(np.ones((2, 1)), clip=0)
    with pytest.raises(ValueError, match=r"mean and std of equal shape, got \(2,\) and \(3,\)"):
        Standardizer(np.zeros(2), np.ones(3))
    scaler = Standardizer.fit(torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"expected values \[N, 2\], got \(5, 1\)"):
        scaler.transform(torch.zeros(5, 1))  # would broadcast silently
    # a column without values is an error for targets, a column of fill_nan for descriptors
    filled = Standardizer.fit(np.array([[1.0, np.nan], [2.0, np.nan]]), fill_nan=0.0)
    assert filled.transform(np.array([[1.0, 5.0]]))[0, 1] == 0.0
