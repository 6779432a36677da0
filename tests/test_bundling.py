"""Edge bundling of dense connections: exact ends, lateral moves only, less ink than straight lines."""

import numpy as np
import pytest

from blender_cnn.core.bundling import (
    RAILS,
    bundle_edges,
    default_clusters,
    default_points_per_edge,
    kmeans,
    lateral_offsets,
    nested_clusters,
    rail_bands,
    route_edges,
    route_weights,
    routed_points,
    straight_points,
)
from blender_cnn.core.connections import STRONGEST_PER_NEURON, EdgeSelection, selected_weights
from blender_cnn.core.drawing_metrics import ambiguity, distortion, drawing_bounds, ink
from blender_cnn.core.layout import neuron_positions, suggested_spacing

STAGE_VIEW = (1.0, 1.0, -0.4)  # the stage camera's direction, roughly
SIDE_VIEW = (0.0, 1.0, 0.0)


# The CIFAR-10-greyscale network's output shapes: its scene's Layer Spacing comes from the widest wall (245).
CIFAR_SHAPES = [(32, 32, 1), (32, 32, 64), (32, 32, 64), (16, 16, 64), (16, 16, 128), (16, 16, 128), (8, 8, 128)]
CIFAR_SHAPES += [(8192,), (256,), (10,)]


def dense_stack(sizes, spacing=40.0, per_neuron=None):
    """(source_xyz, target_xyz) of the weights of a stack of dense layers, laid out as the scene does: every weight,
    or the ``per_neuron`` strongest of each target neuron of random kernels (the scene's selection for wide layers)."""
    sources, targets = [], []
    rng = np.random.default_rng(1)
    for index, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
        if per_neuron is None:
            source_index, target_index = np.meshgrid(np.arange(inputs), np.arange(outputs), indexing="ij")
        else:
            kernel = rng.standard_normal((inputs, outputs)).astype(np.float32)
            source_index, target_index = selected_weights(kernel, EdgeSelection(STRONGEST_PER_NEURON, per_neuron))
        sources.append(neuron_positions(inputs, index * spacing)[source_index.ravel()])
        targets.append(neuron_positions(outputs, (index + 1) * spacing)[target_index.ravel()])
    return np.concatenate(sources), np.concatenate(targets)


@pytest.fixture(scope="module")
def demo_stack():
    """The digits demo: flatten 4x4x16 (a 16 x 16 grid) -> dense 32 (a column) -> dense 10 (a column)."""
    source, target = dense_stack([256, 32, 10])
    points = default_points_per_edge(len(source))
    straight = straight_points(source, target, points)
    return source, target, straight, bundle_edges(source, target, points, straight=straight)


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
    assert bundled.dtype == np.float32 and bundled.shape == (len(source), 24, 3)
    assert np.array_equal(bundled[:, 0], source) and np.array_equal(bundled[:, -1], target)


def test_bundling_moves_points_only_sideways(demo_stack):
    _, _, straight, bundled = demo_stack
    assert np.array_equal(bundled[..., 0], straight[..., 0])
    assert np.abs(bundled[:, 1:-1, 1:] - straight[:, 1:-1, 1:]).max() > 1.0


def test_strength_zero_is_the_straight_segment_between_the_neurons_and_one_the_bundle(demo_stack):
    """The scene draws each curve as the segment between its two neurons plus Bundling Strength times its
    offsets. The segments are computed here, evenly from source to target, not by the code under test."""
    source, target, straight, bundled = demo_stack
    offsets = lateral_offsets(bundled, straight)
    t = np.linspace(0.0, 1.0, bundled.shape[1])[None, :, None]
    segments = source[:, None, :] * (1.0 - t) + target[:, None, :] * t  # what strength 0 draws
    np.testing.assert_allclose(segments + offsets, bundled, atol=1e-4)  # strength 1: the bundled curves
    assert np.all(offsets[..., 0] == 0) and np.all(offsets[:, [0, -1]] == 0)  # sideways only, never at a neuron
    assert np.abs(offsets).max() > 1.0  # and bundling does move the curves


def test_the_routes_draw_the_bundles_from_where_the_neurons_stand(demo_stack):
    """What the scene stores (the routes) and what it draws from them give the bundled points."""
    source, target, _, bundled = demo_stack
    routes = route_edges(source, target, bundled.shape[1])
    np.testing.assert_allclose(routed_points(source, target, routes), bundled, atol=1e-4)


def test_spreading_and_moving_the_layers_scales_and_moves_the_bundles_with_them():
    """The demo's dense stack, then the same neurons at Cell Size 1.7 and Neuron Scale 4 with the layers 1.5 times
    as far apart and the last one moved aside: the curves drawn from the old routes are the bundling of the neurons
    where they stand now, their ends the neurons, and between two columns scaled by the same factor the bundle is
    the old one scaled."""
    sizes, spacing = [256, 32, 10], 40.0
    source, target = dense_stack(sizes, spacing)
    points = default_points_per_edge(len(source))
    routes = route_edges(source, target, points)
    before = routed_points(source, target, routes)

    def moved(xyz, aside):
        """Where the scene puts these neurons then: layers are centred on the x axis, columns of up to 64."""
        layer = np.rint(xyz[:, 0] / spacing).astype(int)
        new = xyz.copy()
        for index, size in enumerate(sizes):
            mine = layer == index
            new[mine, 0] = 1.5 * spacing * index
            new[mine, 1:] *= 1.7 * 4.0 / 2.5 if size <= 64 else 1.7
            new[mine, 1:] += aside if index == 2 else 0.0
        return new

    for aside in (0.0, 3.0):
        new_source, new_target = moved(source, aside), moved(target, aside)
        after = routed_points(new_source, new_target, routes)
        assert np.array_equal(after[:, 0], new_source) and np.array_equal(after[:, -1], new_target)
        np.testing.assert_allclose(after, bundle_edges(new_source, new_target, points), atol=1e-3)
    columns = source[:, 0] == spacing  # dense 32 -> dense 10: both columns, spread alike
    scaled = moved(source, 0.0), moved(target, 0.0)
    expected = before[columns] * np.array([1.5, 1.7 * 4.0 / 2.5, 1.7 * 4.0 / 2.5], np.float32)
    np.testing.assert_allclose(routed_points(scaled[0], scaled[1], routes)[columns], expected, atol=1e-3)


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
    weights = route_weights(16, 0.25, 0.1)  # columns: source, its group, its cluster, far cluster, group, target
    assert weights.shape == (14, 6) and np.allclose(weights.sum(axis=1), 1.0)
    assert np.all(weights[0, 2:] == 0) and weights[0, 1] > 0.5  # t = 1/15: easing into its group
    assert weights[1, 0] == 0 and weights[1, 1] > 0.8  # t = 2/15: left its group for its cluster
    assert np.allclose(weights[::-1, ::-1], weights)  # the target end mirrors the source end
    middle = weights[6]  # t = 7/15: on the straight stretch between the two cluster centres
    assert middle[0] == middle[1] == middle[4] == middle[5] == 0


def test_wide_side_gets_one_cluster_and_the_narrow_side_at_most_two():
    assert default_clusters(8192, 256) == (1, 2)  # CIFAR flatten -> dense 256: one trunk, two strands
    assert default_clusters(32, 256) == (2, 1)
    assert default_clusters(256, 10) == (1, 1)  # 10 neurons: too few to split
    assert default_clusters(8192, 256, strands=1) == (1, 1)


def test_neighbouring_neurons_share_a_group_inside_their_cluster():
    grid = neuron_positions(8192, 0.0)[:, 1:]
    centre, group = nested_clusters(grid, 2, 64)
    assert len(np.unique(centre, axis=0)) == 2
    assert 100 <= len(np.unique(group, axis=0)) <= 140  # about 8192 / 64
    spread = np.linalg.norm(grid - group, axis=1)
    assert spread.max() < 10 and np.linalg.norm(grid - centre, axis=1).mean() > 3 * spread.mean()
    # A cluster too small for two groups is not divided: its neurons fan straight into its centre.
    column = neuron_positions(32, 0.0)[:, 1:]
    assert np.array_equal(nested_clusters(column, 2, 64)[1], column)


def pruned_cifar_pair():
    """flatten 8192 (91 x 91 grid) -> dense 256 (16 x 16 grid), the strongest 78 weights per target of a random kernel
    (the CIFAR-10 scene's selection), the layers as far apart as its scene puts them: (source, target, weight)."""
    kernel = np.random.default_rng(1).standard_normal((8192, 256)).astype(np.float32)
    source_unit, target_unit = selected_weights(kernel, EdgeSelection(STRONGEST_PER_NEURON, per_neuron=78))
    spacing = suggested_spacing(CIFAR_SHAPES)
    source = neuron_positions(8192, 0.0)[source_unit]
    target = neuron_positions(256, float(spacing))[target_unit]
    return source, target, kernel[source_unit, target_unit]


def demo_pair():
    """The digits demo's flatten 256 (16 x 16 grid) -> dense 32 (a column), every weight of a random kernel."""
    kernel = np.random.default_rng(2).standard_normal((256, 32)).astype(np.float32)
    source_unit, target_unit = (unit.ravel() for unit in np.meshgrid(np.arange(256), np.arange(32), indexing="ij"))
    source = neuron_positions(256, 0.0)[source_unit]
    target = neuron_positions(32, 40.0)[target_unit]
    return source, target, kernel[source_unit, target_unit]


def test_a_wide_pair_with_the_scenes_selection_keeps_its_structure_in_60_percent_of_the_ink():
    """The CIFAR-10 scene's flatten -> dense 256, seen from the stage camera's direction: bundled, the drawing covers
    at most 60% of the pixels the straight lines cover, its curves are on average at most 30% longer, and of the
    strong connections it shows at most 60% as many false ones as the one trunk of the funnel (which shows nearly
    all of them, as straight lines do at this size)."""
    source, target, weight = pruned_cifar_pair()
    points = default_points_per_edge(len(source))
    straight = straight_points(source, target, points)
    bundled = bundle_edges(source, target, points, straight=straight)
    funnel = bundle_edges(source, target, points, style="funnel", straight=straight)
    frame = drawing_bounds(straight, STAGE_VIEW)
    assert ink(bundled, STAGE_VIEW, 256, frame) <= 0.6 * ink(straight, STAGE_VIEW, 256, frame)
    assert distortion(straight) == pytest.approx(1.0)
    assert distortion(bundled) < 1.3
    one_trunk = ambiguity(funnel, STAGE_VIEW, 256, frame, weights=weight)
    assert one_trunk > 0.95 and ambiguity(straight, STAGE_VIEW, 256, frame, weights=weight) > 0.95
    assert ambiguity(bundled, STAGE_VIEW, 256, frame, weights=weight) <= 0.6 * one_trunk


def lateral_at(points, share):
    """(y, z) of each edge at ``share`` of the way (a point index)."""
    return points[:, round(share * (points.shape[1] - 1)), 1:]


def strands(points):
    """(distinct (y, z) places of the edges halfway along, the place of each edge): what a reader sees mid-span."""
    places, place_of = np.unique(np.round(lateral_at(points, 0.5), 3), axis=0, return_inverse=True)
    return places, place_of.ravel()


@pytest.mark.parametrize("pair", [demo_pair, pruned_cifar_pair], ids=["demo 256 -> 32, all", "8192 -> 256, pruned"])
def test_a_256_wide_layer_keeps_its_structure_instead_of_collapsing_into_two_strands(pair):
    """Mid-span the bundled connections of a 256-neuron layer run as RAILS strands (the funnel: two), each strand
    reaching only its own band of neighbouring neurons of the narrower layer and none a token few; seen from the
    stage camera's direction, a reader following the strong connections is led to a neuron they do not reach at
    most 0.7 times as often as through the funnel."""
    source, target, weight = pair()
    straight = straight_points(source, target, 24)
    bundled = bundle_edges(source, target, 24, straight=straight)
    funnel = bundle_edges(source, target, 24, style="funnel", straight=straight)
    assert len(strands(funnel)[0]) == 2
    places, place_of = strands(bundled)
    assert len(places) == RAILS
    narrow_of = np.unique(target[:, 1:], axis=0, return_inverse=True)[1].ravel()
    assert all(len(np.unique(place_of[narrow_of == neuron])) == 1 for neuron in np.unique(narrow_of))
    assert np.bincount(place_of).min() > 0.15 * len(place_of)
    frame = drawing_bounds(straight, STAGE_VIEW)
    bundled_ambiguity = ambiguity(bundled, STAGE_VIEW, 256, frame, weights=weight)
    assert bundled_ambiguity <= 0.7 * ambiguity(funnel, STAGE_VIEW, 256, frame, weights=weight)


def test_a_pruned_pair_runs_on_rails_one_per_band_of_the_narrow_layer():
    """flatten 1024 (32 x 32 grid) -> dense 144 (12 x 12 grid), the strongest 20 per target: in the middle of the
    way the edges run on RAILS rails, each the edges reaching one band of whole rows of targets (3 of the 12);
    the rails stay apart across z, and edges end exactly at their neurons."""
    source, target = dense_stack([1024, 144], per_neuron=20)
    bundled = bundle_edges(source, target, 24)
    assert np.array_equal(bundled[:, 0], source) and np.array_equal(bundled[:, -1], target)
    rails, rail_of = strands(bundled)
    assert len(rails) == RAILS
    target_of = np.unique(target[:, 1:], axis=0, return_inverse=True)[1].ravel()
    assert all(len(np.unique(rail_of[target_of == t])) == 1 for t in np.unique(target_of))
    for rail in range(RAILS):
        reached = target[rail_of == rail]
        assert len(np.unique(reached[:, 2])) == 12 // RAILS  # whole rows of neighbours
        assert len(np.unique(reached[:, 1])) == 12
    assert np.diff(np.sort(rails[:, 1])).min() > 2.0 and np.ptp(rails[:, 0]) < 1e-3


def test_a_complete_pair_runs_on_rails_into_a_wide_layer_and_through_the_funnel_into_a_narrow_one():
    """Every weight drawn: flatten 256 -> dense 32 runs on rails (no collapse into the funnel's two strands);
    dense 32 -> output 10 keeps the funnel's one trunk, its narrow side too small to split."""
    source, target = dense_stack([256, 32, 10])
    bundled, funnel = bundle_edges(source, target, 24), bundle_edges(source, target, 24, style="funnel")
    wide = source[:, 0] == 0.0
    assert len(strands(bundled[wide])[0]) == RAILS and len(strands(funnel[wide])[0]) == 2
    assert np.array_equal(bundled[~wide], funnel[~wide])


def test_rail_bands_split_whole_rows_evenly_and_follow_the_layout():
    column, grid = neuron_positions(32, 0.0)[:, 1:], neuron_positions(256, 0.0)[:, 1:]
    assert np.bincount(rail_bands(column)).tolist() == [8] * 4
    assert np.bincount(rail_bands(grid)).tolist() == [64] * 4
    for positions in (column, grid):
        bands = rail_bands(positions)
        assert np.array_equal(bands, rail_bands(positions * np.float32(2.72) + np.float32(3.0)))
        assert all(np.ptp(positions[bands == band][:, 1]) < 0.3 * np.ptp(positions[:, 1]) for band in range(4))
    row = np.stack([np.arange(10.0), np.zeros(10)], axis=1)  # a layer in one row: cut along y
    assert rail_bands(row).tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert rail_bands(column, 1).tolist() == [0] * 32


def test_rails_at_the_narrow_source_side_mirror_those_at_the_target_side():
    """dense 32 -> dense 512, the strongest 3 inputs of each target: the rails gather at the 32 sources' end."""
    source, target = dense_stack([32, 512], per_neuron=3)
    bundled = bundle_edges(source, target, 24)
    mirrored = bundle_edges(target * np.float32([-1, 1, 1]), source * np.float32([-1, 1, 1]), 24)
    np.testing.assert_allclose(bundled[:, ::-1] * np.float32([-1, 1, 1]), mirrored, atol=1e-4)
    assert len(np.unique(np.round(lateral_at(bundled, 0.5), 3), axis=0)) == RAILS


def test_rails_follow_the_neurons_when_the_layers_spread_and_move():
    """The routes of a pruned stack drawn from moved neurons are the bundling of the neurons where they stand."""
    sizes = [1024, 64, 10]
    source, target = dense_stack(sizes, per_neuron=8)
    routes = route_edges(source, target, 24)
    scale = np.float32([1.5, 1.7, 1.7])
    moved_source, moved_target = source * scale, target * scale + np.float32([0, 3, -2])
    after = routed_points(moved_source, moved_target, routes)
    assert np.array_equal(after[:, 0], moved_source) and np.array_equal(after[:, -1], moved_target)
    np.testing.assert_allclose(after, bundle_edges(moved_source, moved_target, 24), atol=1e-3)


def test_kmeans_finds_separate_groups_and_is_seeded():
    positions = np.concatenate([np.zeros((5, 2)), np.full((5, 2), 10.0)])
    centres, labels = kmeans(positions, 2, seed=3)
    assert sorted(map(tuple, np.round(centres, 6))) == [(0, 0), (10, 10)]
    assert len(set(labels[:5])) == 1 and labels[0] != labels[-1]


def test_small_drawings_get_more_points_and_huge_ones_fewer():
    assert default_points_per_edge(22_528) == 24  # the CIFAR-10 scene's curves: short first steps, short fans
    assert default_points_per_edge(10_000) > default_points_per_edge(100_000) > default_points_per_edge(2_000_000)
    assert default_points_per_edge(2_000_000) == 8


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
    with pytest.raises(ValueError, match="group_length"):
        bundle_edges(source, target, 8, group_length=0.2)
    with pytest.raises(ValueError, match="strands"):
        bundle_edges(source, target, 8, strands=0)
    with pytest.raises(ValueError, match="style must be one of structure, funnel"):
        bundle_edges(source, target, 8, style="trunk")
    with pytest.raises(ValueError, match="rails must be >= 1"):
        bundle_edges(source, target, 8, rails=0)
    with pytest.raises(ValueError, match="rail_fan in"):
        bundle_edges(source, target, 8, rail_fan=0.5)
    with pytest.raises(ValueError, match="must be finite"):
        bundle_edges(np.full_like(source, np.nan), target)


def test_the_optional_kde_steps_keep_ends_and_x():
    source, target = dense_stack([30, 20])
    straight = straight_points(source, target, 8)
    bundled = bundle_edges(source, target, 8, kde_iterations=2)
    assert np.array_equal(bundled[:, 0], source) and np.array_equal(bundled[:, -1], target)
    assert np.array_equal(bundled[..., 0], straight[..., 0])
    assert not np.array_equal(bundled, bundle_edges(source, target, 8))
