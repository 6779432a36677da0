"""Ink, distortion and ambiguity of polyline drawings, checked against figures known by hand."""

import numpy as np
import pytest

from blender_cnn.core.drawing_metrics import (
    CHUNK_EDGES,
    ambiguity,
    distortion,
    drawing_bounds,
    ink,
    node_ambiguity,
    perceived_neighbours,
    strong_edges,
    view_projection,
)

SIDE = (0.0, 1.0, 0.0)  # looking along +y: screen x is world x, screen y is world z
FRAME = (0.0, 0.0, 10.0, 10.0)


def polyline(*points):
    return np.array([points], dtype=np.float32)


def test_side_view_shows_x_to_the_right_and_z_up():
    matrix = view_projection(SIDE)
    assert np.allclose(matrix[0, :3], (1, 0, 0)) and np.allclose(matrix[1, :3], (0, 0, 1))


def test_a_horizontal_line_across_the_frame_covers_one_row():
    line = polyline((0, 0, 5.05), (4, 0, 5.05), (10, 0, 5.05))
    # 100 x 100 pixels; the line covers the 100 of one row.
    assert ink(line, SIDE, resolution=100, bounds=FRAME) == pytest.approx(100 / 100**2)


def test_a_diagonal_and_a_vertical_line_cover_one_pixel_per_column_or_row():
    diagonal = polyline((0, 0, 0), (10, 0, 10))
    vertical = polyline((2.05, 0, 0), (2.05, 0, 10))
    assert ink(diagonal, SIDE, resolution=100, bounds=FRAME) == pytest.approx(0.01)
    assert ink(vertical, SIDE, resolution=100, bounds=FRAME) == pytest.approx(0.01)


def test_half_a_line_outside_the_frame_counts_half():
    line = polyline((-10, 0, 5.05), (10, 0, 5.05))
    assert ink(line, SIDE, resolution=100, bounds=FRAME) == pytest.approx(0.01)
    assert ink(line + np.float32(100), SIDE, resolution=100, bounds=FRAME) == 0.0


def test_pixels_are_square_and_the_frame_defaults_to_the_drawing():
    line = polyline((0, 0, 0), (10, 0, 0), (10, 0, 5))
    # Frame 10 x 5 at 100 pixels along x: 100 x 50 pixels, 100 + 50 - 1 covered.
    assert ink(line, SIDE, resolution=100) == pytest.approx(149 / (100 * 50))
    assert drawing_bounds(line, SIDE) == pytest.approx((0, 0, 10, 5))


def test_a_matrix_and_a_view_direction_give_the_same_ink():
    lines = np.random.default_rng(1).uniform(0, 10, (50, 4, 3)).astype(np.float32)
    assert ink(lines, view_projection(SIDE), 64, FRAME) == ink(lines, SIDE, 64, FRAME)


def test_the_perspective_divide_applies():
    halving = np.eye(4)
    halving[:3, :3] = view_projection(SIDE)[:3, :3]
    halving[3, 3] = 2.0  # w = 2: every point at half its screen coordinates
    line = polyline((0, 0, 10.1), (20, 0, 10.1))
    assert ink(line, halving, resolution=100, bounds=FRAME) == pytest.approx(0.01)


def test_edges_drawn_in_several_chunks_cover_what_one_edge_covers():
    line = polyline((0, 0, 5.05), (10, 0, 5.05))
    many = np.repeat(line, CHUNK_EDGES + 5, axis=0)
    assert ink(many, SIDE, resolution=100, bounds=FRAME) == ink(line, SIDE, resolution=100, bounds=FRAME)


def test_distortion_of_straight_and_bent_polylines():
    straight = polyline((0, 0, 0), (1, 1, 1), (3, 3, 3))
    bent = polyline((0, 0, 0), (3, 0, 4), (6, 0, 0))  # 5 + 5 over 6
    assert distortion(straight) == pytest.approx(1.0)
    assert distortion(bent) == pytest.approx(10 / 6)
    assert distortion(np.concatenate([straight, bent])) == pytest.approx((1 + 10 / 6) / 2)


@pytest.mark.parametrize("points", [np.zeros((3, 3)), np.zeros((2, 1, 3)), np.zeros((2, 4, 2))])
def test_polylines_of_the_wrong_shape_are_refused(points):
    with pytest.raises(ValueError, match="shape"):
        ink(points, SIDE)
    with pytest.raises(ValueError, match="shape"):
        distortion(points)


def test_a_bad_projection_is_refused():
    with pytest.raises(ValueError, match="4x4"):
        ink(np.zeros((1, 2, 3)), np.eye(3), bounds=FRAME)
    with pytest.raises(ValueError, match="parallel"):
        view_projection((0, 0, 1))


# --- ambiguity: which connections a drawing suggests that do not exist ------------------------------------------------
# Drawings in the x-z plane seen from the side, 100 x 100 pixels of one unit: sources at x = 0, targets at x = 100.


def drawing(*lines):
    """Polylines (E, P, 3) from lists of (x, z) corners; every line must have as many corners."""
    return np.array([[(x, 0.0, z) for x, z in line] for line in lines], dtype=np.float32)


def side_ambiguity(lines, **options):
    return ambiguity(lines, SIDE, resolution=100, bounds=(0.0, 0.0, 100.0, 100.0), **options)


def test_straight_edges_far_apart_or_crossing_steeply_suggest_nothing_false():
    """Two sources, two targets, a -> c and b -> d: drawn parallel and far apart, or as an X (90 degrees)."""
    assert side_ambiguity(drawing([(0, 20), (100, 20)], [(0, 80), (100, 80)])) == 0.0
    assert side_ambiguity(drawing([(0, 20), (100, 80)], [(0, 80), (100, 20)])) == 0.0


def test_edges_sharing_one_trunk_suggest_every_missing_connection():
    """a -> c and b -> d merge into one stretch: a seems to reach d, b to reach c; each node's only non-neighbour
    looks connected."""
    trunk = drawing([(0, 20), (30, 50), (70, 50), (100, 20)], [(0, 80), (30, 50), (70, 50), (100, 80)])
    assert side_ambiguity(trunk) == 1.0
    # Five sources, each to its own target, all through one trunk: all 4 non-neighbours of each node look connected.
    ends = np.linspace(10, 90, 5)
    assert side_ambiguity(drawing(*[[(0, z), (30, 50), (70, 50), (100, z)] for z in ends])) == 1.0


def test_a_complete_pair_through_one_point_reads_exactly():
    """Every source to every target: whatever a reader follows is a real connection (a confluent junction)."""
    lines = [[(0, a), (30, 50), (70, 50), (100, b)] for a in (20, 80) for b in (20, 80)]
    assert side_ambiguity(drawing(*lines)) == 0.0


def test_each_node_counts_the_share_of_its_non_neighbours_that_look_connected():
    """a -> x and b -> y share a trunk, c -> z runs alone: a, b, x and y each see one of their two non-neighbours
    connected, c and z none; the drawing's ambiguity is their mean, 4 * 0.5 / 6."""
    lines = drawing(
        [(0, 20), (30, 40), (70, 40), (100, 20)],
        [(0, 50), (30, 40), (70, 40), (100, 50)],
        [(0, 90), (30, 90), (70, 90), (100, 90)],
    )
    nodes, shares = node_ambiguity(perceived_neighbours(lines, SIDE, 100, (0.0, 0.0, 100.0, 100.0)))
    assert len(nodes) == 6 and sorted(shares) == [0.0, 0.0, 0.5, 0.5, 0.5, 0.5]
    assert side_ambiguity(lines) == pytest.approx(1 / 3)
    # Nodes named by the caller instead of by their positions: the same answer.
    named = side_ambiguity(lines, sources=[0, 1, 2], targets=[10, 11, 12])
    assert named == pytest.approx(1 / 3)


@pytest.mark.parametrize(("degrees", "expected"), [(4.0, 1.0), (20.0, 0.0)])
def test_only_edges_running_in_nearly_the_same_direction_are_confused(degrees, expected):
    """Two edges crossing in the middle of the frame at 4 degrees overlap for many pixels and a reader may switch;
    at 20 degrees the crossing is plain."""
    rise = 50 * np.tan(np.radians(degrees) / 2)
    lines = drawing([(0, 50 - rise), (100, 50 + rise)], [(0, 50 + rise), (100, 50 - rise)])
    assert side_ambiguity(lines) == expected


@pytest.mark.parametrize(("gap", "expected"), [(1.0, 1.0), (4.0, 0.0)])
def test_parallel_edges_closer_than_the_line_width_are_confused(gap, expected):
    assert side_ambiguity(drawing([(0, 50), (100, 50)], [(0, 50 + gap), (100, 50 + gap)])) == expected


def test_ink_next_to_the_nodes_is_left_out():
    """Two sources one pixel apart whose edges run side by side for their first 2 pixels, then part steeply:
    no drawing could keep them apart there, so it does not count; without the clearance it does."""
    lines = drawing([(0, 50), (2, 50), (100, 10)], [(0, 51), (2, 51), (100, 90)])
    assert side_ambiguity(lines) == 0.0
    assert side_ambiguity(lines, clearance=0.0) == 1.0


def test_layer_pairs_are_measured_apart():
    """A complete pair merged into one point beside a pruned pair drawn straight: nothing false in either."""
    complete = [[(0, a), (25, 50), (50, b)] for a in (20, 80) for b in (30, 70)]
    pruned = [[(50, 30), (75, 30), (100, 30)], [(50, 70), (75, 70), (100, 70)]]
    assert side_ambiguity(drawing(*complete, *pruned)) == 0.0


# --- with weights: the connections that stand out ---------------------------------------------------------------------


def test_only_the_connections_that_stand_out_count():
    """A connection stands out when its |weight| is at least half the largest of its layer pair."""
    weights = [1.0, -0.5, 0.49, -2.0, 1.0, 0.9]
    pairs = [0, 0, 0, 1, 1, 1]
    assert strong_edges(weights, pairs).tolist() == [True, True, False, True, True, False]
    assert strong_edges(weights, pairs, strong=1.0).tolist() == [True, False, False, True, False, False]
    with pytest.raises(ValueError, match="strong"):
        strong_edges(weights, pairs, strong=0.0)


def test_a_complete_pair_merged_into_one_trunk_hides_which_connections_are_strong():
    """Every weight of 2 -> 2 drawn: a -> c and b -> d strong, a -> d and b -> c weak (thin, pale). Through one
    junction the strong curves share their ink: a reader following a's strong curve may end at d; every node's
    only other-side node without a strong connection looks strongly connected. Straight, the strong curves run
    far apart and the weak ones cross them steeply: nothing false. Without weights the pair is complete and both
    drawings read exactly."""
    ends = [(20, 20), (80, 80), (20, 80), (80, 20)]  # a -> c, b -> d, a -> d, b -> c
    weights = [1.0, -0.9, 0.1, 0.2]
    trunk = drawing(*[[(0, a), (30, 50), (70, 50), (100, b)] for a, b in ends])
    straight = drawing(*[[(0, a), (50, (a + b) / 2), (100, b)] for a, b in ends])
    assert side_ambiguity(trunk, weights=weights) == 1.0
    assert side_ambiguity(straight, weights=weights) == 0.0
    assert side_ambiguity(trunk) == side_ambiguity(straight) == 0.0


def test_a_fan_that_collapses_into_one_trunk_is_ambiguous_and_on_rails_it_is_not():
    """Every weight of 6 -> 6 drawn, each source strongest to the target at its own height. All 36 curves through
    one trunk: every neuron seems strongly connected to all 5 it is not (1). On rails, every curve onto the rail
    of its target's height from a tenth of the way: the strong curves run apart (0), the weak ones' crossings
    near the sources lead nowhere."""
    heights = np.linspace(10, 90, 6)
    pairs = [(a, b) for a in range(6) for b in range(6)]
    weights = [1.0 if a == b else 0.3 for a, b in pairs]
    trunk = drawing(*[[(0, heights[a]), (30, 50), (70, 50), (100, heights[b])] for a, b in pairs])
    rails = drawing(*[[(0, heights[a]), (10, heights[b]), (70, heights[b]), (100, heights[b])] for a, b in pairs])
    assert side_ambiguity(trunk, weights=weights) == 1.0
    assert side_ambiguity(rails, weights=weights) == 0.0


def test_bad_ambiguity_options_are_refused():
    lines = drawing([(0, 20), (100, 20)], [(0, 80), (100, 80)])
    with pytest.raises(ValueError, match="width and angle"):
        side_ambiguity(lines, width=0.0)
    with pytest.raises(ValueError, match="both sources and targets"):
        side_ambiguity(lines, sources=[0, 1])
    with pytest.raises(ValueError, match="one node id per edge"):
        side_ambiguity(lines, sources=[0], targets=[1])
    with pytest.raises(ValueError, match="one value per edge"):
        side_ambiguity(lines, weights=[1.0])
