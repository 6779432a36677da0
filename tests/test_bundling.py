"""Edge bundling of dense connections: exact ends, lateral moves only, less ink than straight lines."""

import numpy as np
import pytest

from blender_cnn.core.bundling import (bundle_edges, default_points_per_edge, kmeans, lateral_offsets,
                                       route_weights, straight_points)
from blender_cnn.core.drawing_metrics import distortion, drawing_bounds, ink
from blender_cnn.core.layout import neuron_positions

STAGE_VIEW = (1.0, 1.0, -0.4)  # the stage camera's direction, roughly
SIDE_VIEW = (0.0, 1.0, 0.0)


def dense_stack(sizes, spacing=40.0):
    """(source_xyz, target_xyz) of every weight of a stack of dense layers, laid out as the scene does."""
    sources, targets = [], []
    for index, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
        source_index, target_index = np.meshgrid(np.arange(inputs), np.arange(outputs), indexing="ij")
        sources.append(neuron_positions(inputs, index * spacing)[source_index.ravel()])
        targets.append(neuron_positions(outputs, (index + 1) * spacing)[target_index.ravel()])
    return np.concatenate(sources), np.concatenate(targets)


@pytest.fixture(scope="module")
def demo_stack():
    """flatten 4x4x8 (a 12 x 11 grid) -> dense 64 (a column) -> dense 10 (a column)."""
    source, target = dense_stack([128, 64, 10])
    straight = straight_points(source, target, 12)
    return source, target, straight, bundle_edges(source, target, 12)


def test_neuron_positions_form_a_column_up_to_64_units_and_a_grid_beyond():
    column = neuron_positions(10, 40.0)
    assert np.all(column[:, 0] == 40.0) and np.all(column[:, 1] == 0.0)
    assert np.allclose(column[:, 2], -(np.arange(10) - 4.5) * 2.5)
    grid = neuron_positions(128, 0.0)  # 12 columns, 11 rows, pitch 1
    assert np.allclose(grid[13], (0.0, -(1 - 5.5), -(1 - 5.0)))
    assert len(np.unique(grid[:, 1])) == 12 and len(np.unique(grid[:, 2])) == 11


def test_straight_points_run_evenly_from_source_to_target():
    source = np.array([[0.0, 1.0, 2.0]], dtype=np.float32)
    target = np.array([[3.0, 4.0, -1.0]], dtype=np.float32)
    points = straight_points(source, target, 4)
    assert points.dtype == np.float32 and points.shape == (1, 4, 3)
    assert np.allclose(points[0], [[0, 1, 2], [1, 2, 1], [2, 3, 0], [3, 4, -1]])


def test_bundled_edges_start_and_end_exactly_at_their_neurons(demo_stack):
    source, target, _, bundled = demo_stack
    assert bundled.dtype == np.float32 and bundled.shape == (len(source), 12, 3)
    assert np.array_equal(bundled[:, 0], source) and np.array_equal(bundled[:, -1], target)


def test_bundling_moves_points_only_sideways(demo_stack):
    _, _, straight, bundled = demo_stack
    assert np.array_equal(bundled[..., 0], straight[..., 0])
    assert np.abs(bundled[:, 1:-1, 1:] - straight[:, 1:-1, 1:]).max() > 1.0


def test_offsets_scaled_by_strength_blend_straight_into_bundled(demo_stack):
    _, _, straight, bundled = demo_stack
    offsets = lateral_offsets(bundled, straight)
    assert np.all(offsets[..., 0] == 0) and np.all(offsets[:, [0, -1]] == 0)
    assert np.array_equal(straight + np.float32(0.0) * offsets, straight)
    assert np.allclose(straight + offsets, bundled, atol=1e-4)


def test_bundling_halves_the_ink_with_little_detour(demo_stack):
    _, _, straight, bundled = demo_stack
    for view in (STAGE_VIEW, SIDE_VIEW):
        frame = drawing_bounds(straight, view)
        assert ink(bundled, view, 256, frame) < 0.6 * ink(straight, view, 256, frame)
    assert distortion(bundled) < 1.3


def test_bundling_is_deterministic_and_per_layer_pair():
    source, target = dense_stack([30, 20, 6])
    first, again = bundle_edges(source, target, 8), bundle_edges(source, target, 8)
    assert np.array_equal(first, again)
    first_pair = 30 * 20
    alone = bundle_edges(source[:first_pair], target[:first_pair], 8)
    assert np.array_equal(first[:first_pair], alone)


def test_routing_weights_sum_to_one_and_end_at_the_neurons():
    weights = route_weights(16, 0.25)
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert weights[0, 0] > 0.8 and weights[-1, 3] > 0.8  # next to the neurons, close to them
    middle = weights[7]  # t = 7/15: on the straight stretch between the two centres
    assert middle[0] == middle[3] == 0


def test_kmeans_finds_separate_groups_and_is_seeded():
    positions = np.concatenate([np.zeros((5, 2)), np.full((5, 2), 10.0)])
    centres, labels = kmeans(positions, 2, seed=3)
    assert sorted(map(tuple, np.round(centres, 6))) == [(0, 0), (10, 10)]
    assert len(set(labels[:5])) == 1 and labels[0] != labels[-1]


def test_huge_layer_pairs_get_fewer_points():
    assert default_points_per_edge(10_000) > default_points_per_edge(2_000_000) >= 4


def test_bad_input_is_refused_with_a_clear_message():
    source, target = dense_stack([4, 3])
    with pytest.raises(ValueError, match="target_xyz must have the shape of source_xyz"):
        bundle_edges(source, target[:-1])
    with pytest.raises(ValueError, match=r"source_xyz must have shape \(edges, 3\)"):
        straight_points(source[:, :2], target[:, :2], 4)
    with pytest.raises(ValueError, match="points_per_edge must be an integer of at least 2"):
        straight_points(source, target, 1)
    with pytest.raises(ValueError, match="points_per_edge must be an integer of at least 2"):
        bundle_edges(source, target, 1)
    with pytest.raises(ValueError, match="fan_length"):
        bundle_edges(source, target, 8, fan_length=0.5)
    with pytest.raises(ValueError, match="must be finite"):
        bundle_edges(np.full_like(source, np.nan), target)


def test_the_optional_kde_steps_keep_ends_and_x():
    source, target = dense_stack([30, 20])
    straight = straight_points(source, target, 8)
    bundled = bundle_edges(source, target, 8, kde_iterations=2)
    assert np.array_equal(bundled[:, 0], source) and np.array_equal(bundled[:, -1], target)
    assert np.array_equal(bundled[..., 0], straight[..., 0])
    assert not np.array_equal(bundled, bundle_edges(source, target, 8))
