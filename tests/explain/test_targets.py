"""Targets: a class logit per sample, the prediction by default, callables as they are, and
class indices checked against the model's outputs."""

import pytest
import torch

from gconv.explain import CAM, GradCAM
from gconv.explain.targets import ClassifierOutputTarget, as_target, target_index


def test_classifier_output_target():
    output = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(ClassifierOutputTarget(1)(output), torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(ClassifierOutputTarget([1, 0])(output), torch.tensor([2.0, 3.0]))
    assert repr(ClassifierOutputTarget(1)) == "ClassifierOutputTarget(1)"


def test_as_target_and_target_index():
    output = torch.tensor([[1.0, 2.0], [4.0, 3.0], [0.0, 5.0]])
    predicted = as_target(None, output)  # the argmax per sample
    assert isinstance(predicted, ClassifierOutputTarget)
    torch.testing.assert_close(predicted(output), torch.tensor([2.0, 4.0, 5.0]))
    assert target_index(predicted, 3).tolist() == [1, 0, 1]
    assert target_index(as_target(1, output), 3).tolist() == [1, 1, 1]

    def difference(out):
        return out[:, 0] - out[:, 1]

    assert as_target(difference, output) is difference  # a callable is used as it is
    assert target_index(difference, 3).tolist() == [-1, -1, -1]


def test_class_index_out_of_range(gap_cnn, images):
    with (
        CAM(gap_cnn) as cam,
        pytest.raises(ValueError, match="class index out of range.*3 outputs"),
    ):
        cam(images, target=3)
    with GradCAM(gap_cnn) as cam, pytest.raises(ValueError, match="one class index per sample"):
        cam(images, target=[0, 1])
    with pytest.raises(ValueError, match=r"\[B, C, H, W\] or a PyG Data/Batch"):
        GradCAM(gap_cnn)(images[0])
