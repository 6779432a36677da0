"""Layouts of the feature maps (line, circle, grid and blends), folding and channels shown, per layer."""

import math
from pathlib import Path

import numpy as np
import pytest
from scene_readers import drawn_cells

pytestmark = pytest.mark.bpy
REPO = Path(__file__).resolve().parent.parent
GAP = 2.0  # the modifier's default


def set_input(network, name, value):
    from blender_cnn.scene.network import set_network_input

    set_network_input(network, name, value)


def map_centres(network, layer_index):
    """{channel: mean cell centre} of a layer's channel maps (summary maps left out)."""
    centres, cells = drawn_cells(network)
    mine = (cells["layer"] == layer_index) & (cells["is_summary"] == 0)
    return {int(c): centres[mine & (cells["channel"] == c)].mean(axis=0) for c in np.unique(cells["channel"][mine])}


def spacing(network):
    from blender_cnn.scene.network import get_network_input

    return get_network_input(network, "Layer Spacing")


def expected_centres(spacing, layout, channels=8, size=16, layer_index=1, direction=0.0):
    """The map centres the layout arithmetic promises for conv1 (8 maps of 16x16 cells)."""
    pitch = size + GAP
    u = np.arange(channels) - (channels - 1) / 2
    line = np.stack([u * pitch * 0.5 * direction, -u * pitch * (1 - direction), np.zeros(channels)], axis=1)
    radius = channels * (size + GAP) / (2 * math.pi)
    angle = 2 * math.pi * np.arange(channels) / channels
    circle = np.stack([np.zeros(channels), -radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    cols = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / cols)
    grid = np.stack(
        [
            np.zeros(channels),
            -((np.arange(channels) % cols) - (cols - 1) / 2) * pitch,
            -((np.arange(channels) // cols) - (rows - 1) / 2) * pitch,
        ],
        axis=1,
    )
    t1, t2 = min(max(layout, 0), 1), min(max(layout - 1, 0), 1)
    centres = (line * (1 - t1) + circle * t1) * (1 - t2) + grid * t2
    return centres + np.array([layer_index * spacing, 0.0, 0.0])


@pytest.mark.parametrize("layout", [0.0, 1.0, 2.0, 1.5, 0.25])
def test_map_layout_places_the_maps_in_a_line_a_circle_a_grid_or_between(designed_network, layout):
    set_input(designed_network, "conv1/Map Layout", layout)
    centres = map_centres(designed_network, 1)
    np.testing.assert_allclose(
        np.array([centres[c] for c in range(8)]), expected_centres(spacing(designed_network), layout), atol=1e-3
    )


def test_a_line_can_run_along_the_network(designed_network):
    set_input(designed_network, "conv1/Map Layout", 0.0)
    set_input(designed_network, "Line Direction", 1.0)
    centres = map_centres(designed_network, 1)
    np.testing.assert_allclose(
        np.array([centres[c] for c in range(8)]),
        expected_centres(spacing(designed_network), 0.0, direction=1.0),
        atol=1e-3,
    )


def test_each_layer_has_its_own_layout(designed_network):
    before = map_centres(designed_network, 3)
    set_input(designed_network, "conv1/Map Layout", 0.0)
    assert all(np.allclose(before[c], centre) for c, centre in map_centres(designed_network, 3).items())


def test_folding_shows_the_summary_map_of_the_mean_or_the_max(designed_network, digits_design_bundle):
    _centres, cells = drawn_cells(designed_network)
    assert not cells["is_summary"].any()  # unfolded: no summary maps

    set_input(designed_network, "conv1/Fold", 1.0)
    centres, cells = drawn_cells(designed_network)
    conv1 = cells["layer"] == 1
    assert conv1.sum() == 16 * 16 and cells["is_summary"][conv1].all()
    outputs = np.asarray(digits_design_bundle.activations("conv1", -1, 3), dtype=np.float32)
    np.testing.assert_allclose(
        cells["activation"][conv1], outputs.mean(axis=2)[cells["row"][conv1], cells["col"][conv1]], rtol=1e-5
    )
    # The summary map stands at the layer's centre.
    np.testing.assert_allclose(centres[conv1].mean(axis=0), [spacing(designed_network), 0.0, 0.0], atol=1e-3)

    set_input(designed_network, "Fold to Max", True)
    _centres, cells = drawn_cells(designed_network)
    conv1 = cells["layer"] == 1
    assert conv1.sum() == 16 * 16  # the max map instead of the mean map, not beside it
    np.testing.assert_allclose(
        cells["activation"][conv1], outputs.max(axis=2)[cells["row"][conv1], cells["col"][conv1]], rtol=1e-5
    )


def test_half_folded_maps_move_halfway_in_while_the_summary_grows(designed_network):
    grid = map_centres(designed_network, 1)
    set_input(designed_network, "conv1/Fold", 0.5)
    half = map_centres(designed_network, 1)
    origin = np.array([spacing(designed_network), 0.0, 0.0])
    for channel, centre in grid.items():
        np.testing.assert_allclose(half[channel], origin + (centre - origin) * 0.5, atol=1e-3)
    _centres, cells = drawn_cells(designed_network)
    assert ((cells["layer"] == 1) & (cells["is_summary"] == 1)).sum() == 16 * 16


def test_channels_shown_keeps_the_first_n_maps(designed_network):
    set_input(designed_network, "conv2/Channels Shown", 3)
    _centres, cells = drawn_cells(designed_network)
    conv2 = (cells["layer"] == 3) & (cells["is_summary"] == 0)
    assert conv2.sum() == 3 * 8 * 8
    assert set(np.unique(cells["channel"][conv2])) == {0, 1, 2}


def conv1_quads(network):
    """Corners and (channel, row, col) of conv1's drawn cell quads."""
    from scene_readers import drawn_quads

    from blender_cnn.scene.materials import CELL_MATERIAL

    quads, _geometry = drawn_quads(network, CELL_MATERIAL)
    mine = (quads.attribute("layer") == 1) & (quads.attribute("is_summary") == 0)
    return quads.corners()[mine], {name: quads.attribute(name)[mine] for name in ("channel", "row", "col")}


@pytest.mark.parametrize("fold", [1.0, 0.5])
def test_a_folded_map_tilts_its_rows_alternately_like_a_concertina(designed_network, fold):
    from blender_cnn.nodes.groups import MAP_FOLD_ANGLE

    flat_corners, flat = conv1_quads(designed_network)
    set_input(designed_network, "conv1/Map Fold", fold)
    corners, cells = conv1_quads(designed_network)
    np.testing.assert_array_equal(cells["row"], flat["row"])
    angle = fold * MAP_FOLD_ANGLE
    centres, flat_centres = corners.mean(axis=1), flat_corners.mean(axis=1)
    # Each map keeps its width and centre, and its rows close up by cos(angle).
    first_map = cells["channel"] == 0
    np.testing.assert_allclose(centres[:, :2], flat_centres[:, :2], atol=1e-3)
    map_centre = flat_centres[first_map].mean(axis=0)
    np.testing.assert_allclose(
        centres[first_map, 2] - map_centre[2], (flat_centres[first_map, 2] - map_centre[2]) * math.cos(angle), atol=1e-3
    )
    # A quad's top and bottom edges lie at different depths (X): it is tilted, forward on even rows, back on odd.
    top = corners[:, :, 2] > centres[:, None, 2]
    depth = np.array([c[t, 0].mean() - c[~t, 0].mean() for c, t in zip(corners, top)])
    height = np.ptp(flat_corners[:, :, 2], axis=1)
    expected = height * math.sin(angle) * np.where(cells["row"] % 2 == 0, 1.0, -1.0)
    np.testing.assert_allclose(np.abs(depth), np.abs(expected), atol=1e-3)
    even, odd = np.sign(depth[cells["row"] % 2 == 0]), np.sign(depth[cells["row"] % 2 == 1])
    assert set(even) == {even[0]} and set(odd) == {-even[0]}


def test_an_unfolded_map_is_flat(designed_network):
    corners, _cells = conv1_quads(designed_network)
    assert np.ptp(corners[:, :, 0]) < 1e-4


@pytest.mark.parametrize("filters", [8, 36])  # conv1, the widest wall: its maps in a 3x3 or a 6x6 grid
def test_seen_from_the_camera_no_layer_hides_the_next_one(blender, tmp_path, filters):
    """The default Layer Spacing follows the widest wall: from the stage camera's direction, each layer's
    drawn cells stand clear of the next layer's, so no wall covers its neighbour."""
    import json

    from scene_readers import drawn_quads

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle
    from blender_cnn.core.drawing_metrics import view_projection
    from blender_cnn.scene.materials import CELL_MATERIAL
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import VIEW_DIRECTION

    design = json.loads((REPO / "presets" / "digits_cnn.json").read_text())
    design["layers"][0]["filters"] = filters
    network = build_network(load_bundle(design_bundle(design, tmp_path / "digits.bcnn.npz", seed=1)))
    quads, _geometry = drawn_quads(network, CELL_MATERIAL)
    layer = quads.attribute("layer")
    drawn = layer >= 0  # not the legend
    screen_x = quads.corners()[drawn] @ view_projection(tuple(VIEW_DIRECTION))[0, :3]  # (quads, 4)
    extents = [
        (screen_x[layer[drawn] == index].min(), screen_x[layer[drawn] == index].max())
        for index in np.unique(layer[drawn])
    ]
    assert len(extents) == 8
    for index, ((_, right), (left, _)) in enumerate(zip(extents, extents[1:])):
        assert right < left, f"layer {index} reaches {right - left:.1f} over layer {index + 1} on screen"
