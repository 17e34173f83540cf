"""Tests for gconv.explain.viz: figures are built headless, titled as documented, and saved."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from gconv.explain import viz


def test_prediction_grid_marks_errors_in_red(tmp_path):
    images = torch.rand(5, 1, 8, 8)
    preds = torch.tensor([0, 1, 2, 3, 4])
    targets = torch.tensor([0, 1, 9, 3, 7])
    fig = viz.prediction_grid(images, preds, targets, ncols=3)
    assert isinstance(fig, Figure)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == ["0 (0)", "1 (1)", "2 (9)", "3 (3)", "4 (7)"]
    red = matplotlib.colors.to_rgba("red")
    colours = [matplotlib.colors.to_rgba(ax.title.get_color()) for ax in titled]
    assert [c == red for c in colours] == [False, False, True, False, True]
    path = viz.save_figure(fig, tmp_path / "sub" / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prediction_grid_class_names_and_length_check():
    images = torch.rand(2, 3, 4, 4)
    fig = viz.prediction_grid(images, [1, 0], [1, 1], class_names=["cat", "dog"])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["dog (dog)", "cat (dog)"]
    with pytest.raises(ValueError, match="as many predictions and targets as images"):
        viz.prediction_grid(images, [1], [1, 1])


def test_overlay_blends_colormap():
    image = np.zeros((4, 4), dtype=np.float32)
    heat = torch.zeros(4, 4)
    heat[0, 0] = 1.0
    blended = viz.overlay(image, heat, cmap="gray", alpha=0.5)
    assert blended.shape == (4, 4, 3)
    np.testing.assert_allclose(blended[0, 0], 0.5, atol=1e-6)  # white * 0.5 over black
    np.testing.assert_allclose(blended[1, 1], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="does not match image size"):
        viz.overlay(image, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="alpha must lie in"):
        viz.overlay(image, heat, alpha=2.0)


def test_image_grid_with_two_map_sets():
    images = torch.rand(3, 1, 6, 6)
    fig = viz.image_grid(
        images,
        [torch.rand(3, 6, 6), torch.rand(3, 6, 6)],
        labels=["a", "b", "c"],
        heatmap_titles=["CAM", "Grad-CAM"],
        ncols=3,
    )
    assert len([ax for ax in fig.axes if ax.images]) == 9
    with pytest.raises(ValueError, match="expected 3 maps"):
        viz.image_grid(images, torch.rand(2, 6, 6))


def test_feature_maps_shows_each_channel(gap_cnn, images):
    fig = viz.feature_maps(gap_cnn, images[0], "features.0", max_maps=3)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    expected = gap_cnn.features[0](images[:1])[0, 2].detach().numpy()
    np.testing.assert_allclose(panels[2].images[0].get_array(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="no layer named"):
        viz.feature_maps(gap_cnn, images[0], "features.9")


def test_first_layer_filters_and_weight_histograms(gap_cnn):
    fig = viz.first_layer_filters(gap_cnn)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4  # Conv2d(1, 4, 3)
    np.testing.assert_allclose(
        panels[1].images[0].get_array(), gap_cnn.features[0][0].weight[1, 0].detach().numpy()
    )
    hist = viz.weight_histograms(gap_cnn)
    titles = [ax.get_title() for ax in hist.axes if ax.get_title()]
    assert [t.split()[0] for t in titles] == [
        "features.0.0.weight",
        "features.1.0.weight",
        "head.2.weight",
    ]
    with pytest.raises(ValueError, match="no Conv2d layer"):
        viz.first_layer_filters(torch.nn.Linear(2, 2))


def test_grid_node_importance_from_maps(images):
    maps = torch.arange(48.0).view(3, 4, 4)
    fig = viz.grid_node_importance(maps)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    np.testing.assert_allclose(panels[1].images[0].get_array(), np.arange(16.0, 32.0).reshape(4, 4))
    overlaid = viz.grid_node_importance(maps, images=images, labels=["a", "b", "c"])
    assert len([ax for ax in overlaid.axes if ax.images]) == 6
    with pytest.raises(ValueError, match=r"expected maps \[B, h, w\]"):
        viz.grid_node_importance(maps[0])


def _karate():
    import networkx as nx
    from torch_geometric.utils import from_networkx

    return from_networkx(nx.karate_club_graph())


def _node_colours(fig):
    """The importance values behind the drawn nodes (matplotlib's scalar array of the markers)."""
    from matplotlib.collections import PathCollection

    (nodes,) = [c for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection)]
    return np.asarray(nodes.get_array()), nodes.get_offsets()


def test_draw_graph_karate_club_colours_nodes_by_importance(tmp_path):
    data = _karate()
    importance = torch.linspace(0, 1, 34)
    fig = viz.draw_graph(data, importance, title="karate")
    assert isinstance(fig, Figure)
    values, offsets = _node_colours(fig)
    np.testing.assert_allclose(values, importance.numpy())
    assert offsets.shape == (34, 2)
    assert fig.axes[0].get_title() == "karate"
    edges = [c for c in fig.axes[0].collections if type(c).__name__ == "LineCollection"]
    assert len(edges) == 1 and len(edges[0].get_segments()) == 78  # undirected edges once
    viz.save_figure(fig, tmp_path / "karate.png")
    assert (tmp_path / "karate.png").stat().st_size > 1000
    # the seeded layout is reproducible; an Explanation's own node_mask is used when present
    from torch_geometric.explain import Explanation

    explanation = Explanation(edge_index=data.edge_index, node_mask=importance[:, None])
    explanation.num_nodes = 34
    again, _ = _node_colours(viz.draw_graph(explanation))
    np.testing.assert_allclose(again, values)
    np.testing.assert_allclose(_node_colours(viz.draw_graph(data, importance))[1], offsets)
    with pytest.raises(ValueError, match=r"one importance value per node \(34\)"):
        viz.draw_graph(data, torch.ones(5))


def test_draw_graph_grid_uses_pixel_positions_and_draws_into_given_axes():
    from matplotlib.figure import Figure as MplFigure

    from gconv.data.grid import image_to_graph

    image = torch.rand(1, 4, 5)
    graph = image_to_graph(image)
    outer = MplFigure()
    ax = outer.subplots()
    fig = viz.draw_graph(graph, graph.x[:, 0], ax=ax)
    assert fig is outer
    values, offsets = _node_colours(fig)
    np.testing.assert_allclose(values, image.flatten().numpy(), rtol=1e-6)
    expected = graph.pos.numpy() * np.array([1.0, -1.0])  # y downwards, as in the image
    np.testing.assert_allclose(offsets, expected)


def test_draw_graph_molecule_with_rdkit():
    from gconv.data import smiles_to_graph

    graph = smiles_to_graph("c1ccccc1O")
    fig = viz.draw_graph(graph, torch.arange(7.0))
    assert [len(ax.images) for ax in fig.axes if ax.images] == [1]  # RDKit's picture
    assert fig.axes[0].images[0].get_array().shape[-1] in (3, 4)
    with pytest.raises(ValueError, match=r"one importance value per node \(7\)"):
        viz.draw_graph(graph, torch.ones(3))
    plain = viz.draw_graph(graph, layout="spring")  # networkx drawing of the same molecule
    assert not any(ax.images for ax in plain.axes)


def test_draw_matrices_adjacency_and_features():
    from gconv.data import smiles_to_graph
    from gconv.data.grid import image_to_graph

    molecule = smiles_to_graph("CCO")  # C-C-O: a path of 3 atoms
    fig = viz.draw_matrices(molecule)
    adjacency_ax, feature_ax = fig.axes[:2]
    np.testing.assert_array_equal(
        adjacency_ax.images[0].get_array(), [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    )
    np.testing.assert_allclose(feature_ax.images[0].get_array(), molecule.x.numpy())
    karate = viz.draw_matrices(_karate())
    adjacency = karate.axes[0].images[0].get_array()
    assert (
        adjacency.shape == (34, 34) and adjacency.sum() == 156 and (adjacency == adjacency.T).all()
    )
    np.testing.assert_array_equal(karate.axes[1].images[0].get_array(), np.eye(34))
    assert "X = I" in karate.axes[1].get_title()
    grid = viz.draw_matrices(image_to_graph(torch.rand(1, 3, 3)))
    assert grid.axes[0].images[0].get_array().sum() == 40  # 8-neighbour 3x3 grid: 20 edges
    with pytest.raises(ValueError, match="one graph with edge_index"):
        viz.draw_matrices(torch.zeros(3))


def test_draw_molecule_importance_png_and_svg(tmp_path):
    weights = torch.tensor([1.0, -0.5, 0.0, 0.25])  # CC(O)C has 4 heavy atoms
    png = viz.draw_molecule_importance("CC(O)C", weights, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = viz.draw_molecule_importance("CC(O)C", weights[:, None], "svg")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    with pytest.raises(ValueError, match="one importance value per atom \\(4\\), got 3"):
        viz.draw_molecule_importance("CC(O)C", weights[:3])
    with pytest.raises(ValueError, match="could not parse SMILES"):
        viz.draw_molecule_importance("C1CC", weights)
    fig = viz.molecule_grid(["CC(O)C", "c1ccccc1"], [weights, torch.ones(6)], legends=["a", "b"])
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a", "b"]
    viz.save_figure(fig, tmp_path / "mols.png")
    assert (tmp_path / "mols.png").stat().st_size > 1000


def test_faithfulness_curves_draws_both_modes_with_dashed_baseline():
    fractions = torch.linspace(0, 1, 5)
    curves = {
        "deletion CAM": torch.linspace(1, 0, 5),
        "deletion random": torch.full((5,), 0.5),
        "insertion CAM": torch.linspace(0, 1, 5),
    }
    fig = viz.faithfulness_curves(curves, fractions, unit="atoms")
    deletion, insertion = fig.axes
    assert [line.get_label() for line in deletion.lines] == ["CAM", "random"]
    assert deletion.lines[1].get_linestyle() == "--"
    assert len(insertion.lines) == 1
    assert deletion.get_xlabel() == "fraction of atoms removed"


# ---------------------------------------------------------------------------------------------
# 0.1 keywords: heatmap(s) per pixel, node_mask(s) per node, cmap; the old ones warn
# ---------------------------------------------------------------------------------------------
def _panels(fig):
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]


def test_image_grid_and_grid_node_importance_old_keywords_warn():
    images, heatmaps = torch.rand(2, 1, 6, 6), torch.rand(2, 6, 6)
    new = viz.image_grid(images, heatmaps=heatmaps, heatmap_titles=["CAM"], ncols=2)
    with pytest.warns(DeprecationWarning) as record:
        old = viz.image_grid(images, maps=heatmaps, map_titles=["CAM"], ncols=2)
    messages = [str(w.message) for w in record]
    assert any(
        "image_grid(maps=...) is deprecated" in m and "(heatmaps=...)" in m for m in messages
    )
    assert any("(map_titles=...)" in m and "(heatmap_titles=...)" in m for m in messages)
    for a, b in zip(_panels(old), _panels(new), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [ax.get_title() for ax in old.axes] == [ax.get_title() for ax in new.axes]
    with pytest.raises(TypeError, match="both maps= .* and heatmaps="):
        viz.image_grid(images, maps=heatmaps, heatmaps=heatmaps)
    grid_maps = torch.rand(2, 3, 3)
    with pytest.warns(DeprecationWarning, match=r"grid_node_importance\(heatmaps=...\)"):
        old = viz.grid_node_importance(maps=grid_maps)
    for a, b in zip(_panels(old), _panels(viz.grid_node_importance(grid_maps)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_molecule_drawings_old_keywords_warn():
    weights = torch.tensor([1.0, -0.5, 0.0, 0.25])
    new = viz.draw_molecule_importance("CC(O)C", node_mask=weights, image_format="svg", cmap="PiYG")
    with pytest.warns(DeprecationWarning) as record:
        old = viz.draw_molecule_importance(
            "CC(O)C", atom_importance=weights, image_format="svg", colormap="PiYG"
        )
    messages = " | ".join(str(w.message) for w in record)
    assert "draw_molecule_importance(atom_importance=...) is deprecated" in messages
    assert "draw_molecule_importance(node_mask=...)" in messages
    assert "(colormap=...)" in messages and "(cmap=...)" in messages
    assert old == new
    assert new != viz.draw_molecule_importance("CC(O)C", weights, "svg")  # cmap is used
    masks = [weights, torch.ones(6)]
    with pytest.warns(DeprecationWarning, match=r"molecule_grid\(node_masks=...\)"):
        old_grid = viz.molecule_grid(["CC(O)C", "c1ccccc1"], atom_importances=masks)
    new_grid = viz.molecule_grid(["CC(O)C", "c1ccccc1"], node_masks=masks)
    for a, b in zip(_panels(old_grid), _panels(new_grid), strict=True):
        np.testing.assert_array_equal(a, b)
