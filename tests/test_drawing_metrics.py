"""Ink and distortion of polyline drawings, checked against figures known by hand."""

import numpy as np
import pytest

from blender_cnn.core.drawing_metrics import CHUNK_EDGES, distortion, drawing_bounds, ink, view_projection

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
