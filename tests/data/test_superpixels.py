"""Tests for gconv.data.superpixels: SLIC superpixel graphs (means, centroids, k-NN edges)."""

import pytest
import torch

from gconv.data import image_to_superpixels, superpixel_dataset


def digit_like(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    image = torch.zeros(1, 28, 28)
    image[0, 6:22, 12:16] = 1.0  # a stroke
    return (image + 0.05 * torch.rand(1, 28, 28, generator=generator)).clamp(0, 1)


def test_nodes_are_region_means_and_centroids():
    image = digit_like()
    data = image_to_superpixels(image, n_segments=75, k=8, y=3)
    segments = data.segments
    assert segments.shape == (28, 28) and int(segments.max()) + 1 == data.num_nodes
    assert 40 <= data.num_nodes <= 110  # SLIC's count is approximate
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    for node in range(data.num_nodes):
        region = segments == node
        assert data.x[node, 0].item() == pytest.approx(image[0][region].mean().item(), abs=1e-5)
        centroid = (cols[region].mean().item(), rows[region].mean().item())
        assert data.pos[node].tolist() == pytest.approx(centroid, abs=1e-4)
    assert data.y.tolist() == [3]


def test_edges_come_from_the_k_nearest_centroids():
    data = image_to_superpixels(digit_like(1), n_segments=40, k=5)
    distance = torch.cdist(data.pos, data.pos)
    distance.fill_diagonal_(float("inf"))
    source, target = data.edge_index
    assert torch.equal(
        torch.bincount(target, minlength=data.num_nodes), torch.full((data.num_nodes,), 5)
    )
    assert not (source == target).any()
    for node in range(data.num_nodes):
        chosen = distance[node, source[target == node]]
        # every chosen neighbour is at least as close as every neighbour left out
        assert chosen.max() <= distance[node].sort().values[5] + 1e-6
    torch.testing.assert_close(data.edge_attr, data.pos[source] - data.pos[target])


def test_dataset_keeps_labels_and_drops_the_segment_map():
    images = torch.stack([digit_like(0), digit_like(1)])
    graphs = superpixel_dataset(images, torch.tensor([4, 7]), n_segments=30, k=4)
    assert [g.y.item() for g in graphs] == [4, 7]
    assert all("segments" not in g for g in graphs)
    tiny = image_to_superpixels(torch.rand(3, 3), n_segments=2, k=8)  # fewer nodes than k
    assert tiny.edge_index.shape[1] == tiny.num_nodes * (tiny.num_nodes - 1)


def test_bad_input_says_what_was_expected():
    with pytest.raises(ValueError, match=r"image must have shape \(C, H, W\) or \(H, W\)"):
        image_to_superpixels(torch.rand(2, 1, 4, 4))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        image_to_superpixels([[0.0]])
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        superpixel_dataset(torch.rand(2, 1, 8, 8), [1])
