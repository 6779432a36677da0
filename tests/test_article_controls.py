"""The controls of the article's Unity version, as modifier inputs: Expansion Level, Filter Spread, Reduced Depth,
Collapse Input and Line Direction per layer (docs/animation.md, "Opening the network"), read on the drawn cells."""

import math
from pathlib import Path

import numpy as np
import pytest
from scene_readers import drawn_cells

pytestmark = pytest.mark.bpy
REPO = Path(__file__).resolve().parent.parent
GAP = 2.0  # the modifier's Map Gap
# The digits design's layers with feature maps, in order: each opens in its turn (5 turns).
INPUT, CONV1, POOL1, CONV2, POOL2 = range(5)
FLAT_LAYERS = (5, 6, 7)  # flatten, dense1, output: nothing to fold


def set_input(network, name, value):
    from blender_cnn.scene.network import set_network_input

    set_network_input(network, name, value)


def origin(network, layer_index):
    from blender_cnn.scene.network import get_network_input

    return np.array([layer_index * get_network_input(network, "Layer Spacing"), 0.0, 0.0])


def map_centres(network, layer_index):
    """{channel: mean drawn cell centre} of a layer's channel maps (summary maps left out)."""
    centres, cells = drawn_cells(network)
    mine = (cells["layer"] == layer_index) & (cells["is_summary"] == 0)
    return {int(c): centres[mine & (cells["channel"] == c)].mean(axis=0) for c in np.unique(cells["channel"][mine])}


def summary_cells(network, layer_index):
    _centres, cells = drawn_cells(network)
    return int(((cells["layer"] == layer_index) & (cells["is_summary"] > 0)).sum())


def cells_by_layer(network):
    centres, cells = drawn_cells(network)
    return {int(index): centres[cells["layer"] == index] for index in np.unique(cells["layer"])}


# ---------------------------------------------------------------- Expansion Level


@pytest.mark.parametrize(
    ("level", "openness"),
    [
        (1.0, {INPUT: 1.0, CONV1: 1.0, POOL1: 1.0, CONV2: 1.0, POOL2: 1.0}),
        (0.0, {INPUT: 0.0, CONV1: 0.0, POOL1: 0.0, CONV2: 0.0, POOL2: 0.0}),
        # 0.5 of 5 turns: the input and conv1 are open, pool1 halfway through its turn (eased: 0.5), the rest folded.
        (0.5, {INPUT: 1.0, CONV1: 1.0, POOL1: 0.5, CONV2: 0.0, POOL2: 0.0}),
        # 0.25: 1.25 turns; conv1 a quarter through its turn, eased to 3 * 0.25^2 - 2 * 0.25^3.
        (0.25, {INPUT: 1.0, CONV1: 0.15625, POOL1: 0.0, CONV2: 0.0, POOL2: 0.0}),
    ],
)
def test_expansion_level_unfolds_the_layers_with_maps_one_after_another(designed_network, level, openness):
    expanded = {index: map_centres(designed_network, index) for index in openness}
    flat = cells_by_layer(designed_network)
    set_input(designed_network, "Expansion Level", level)
    for index, opened in openness.items():
        centres = map_centres(designed_network, index)
        summary = summary_cells(designed_network, index)
        rows = {INPUT: 16, CONV1: 16, POOL1: 8, CONV2: 8, POOL2: 4}[index]
        # A folded layer is its summary map alone; a layer opening shows both, its maps on their way out.
        assert summary == (rows * rows if opened < 1.0 else 0), f"layer {index} at {level}"
        if opened == 0.0:
            assert centres == {}, f"layer {index} is folded at {level}"
            continue
        assert set(centres) == set(expanded[index])
        for channel, centre in centres.items():
            there = origin(designed_network, index)
            np.testing.assert_allclose(centre, there + opened * (expanded[index][channel] - there), atol=1e-3)
    for index in FLAT_LAYERS:
        np.testing.assert_allclose(cells_by_layer(designed_network)[index], flat[index], atol=1e-4)


def test_expansion_level_caps_a_layer_s_own_fold(designed_network):
    set_input(designed_network, "conv1/Fold", 1.0)
    assert map_centres(designed_network, CONV1) == {}, "fully open, a layer still folds when its own Fold says so"
    set_input(designed_network, "conv1/Fold", 0.0)
    set_input(designed_network, "Expansion Level", 0.2)  # conv1's turn has not come
    assert map_centres(designed_network, CONV1) == {}


@pytest.fixture
def residual_network(blender, residual_design_bundle):
    """Input, stem, two residual blocks (block1: two convolutions and an Add; block2: one and an Add) and a head:
    four turns of the Expansion Level, the blocks the third and the fourth."""
    from blender_cnn.scene.network import build_network

    return build_network(residual_design_bundle)


@pytest.mark.parametrize(
    ("level", "block1", "block2"),
    [(1.0, "open", "open"), (0.0, "collapsed", "collapsed"), (0.75, "open", "collapsed"), (0.625, "half", "collapsed")],
)
def test_expansion_level_collapses_and_expands_the_blocks_in_their_turn(residual_network, level, block1, block2):
    inner = {"block1": (2, 3), "block2": (5,)}  # block1_a, block1_b; block2_a
    outputs = {"block1": 4, "block2": 6}
    set_input(residual_network, "Expansion Level", level)
    _centres, cells = drawn_cells(residual_network)
    for block, state in (("block1", block1), ("block2", block2)):
        for index in inner[block]:
            mine = cells["layer"] == index
            # A collapsed block hides its units but its output; halfway, they show their maps and summaries.
            assert mine.any() == (state != "collapsed"), f"{block} unit {index} at {level}"
            assert (cells["is_summary"][mine] > 0).any() == (state == "half")
        output = cells["layer"] == outputs[block]
        assert output.any(), "a block's output always shows"
        assert (cells["is_summary"][output] > 0).all() == (state == "collapsed"), "collapsed, it shows folded"
    # The input and the stem open in the first two turns, before the blocks.
    for index in (0, 1):
        assert (cells["is_summary"][cells["layer"] == index] > 0).all() == (level == 0.0)


def test_expansion_level_caps_a_block_s_own_expand(residual_network):
    set_input(residual_network, "Blocks/block1", 0.0)
    _centres, cells = drawn_cells(residual_network)
    assert not np.isin(cells["layer"], (2, 3)).any(), "fully open, a block still collapses when its Expand says so"


def test_fit_rows_wraps_the_blocks_as_far_as_the_expansion_level_opens_them(residual_network):
    from blender_cnn.scene.network import fit_rows

    set_input(residual_network, "Layer Spacing", 10.0)  # narrow columns: one row, as long as what is open
    open_length = fit_rows(residual_network)
    for name in ("block1", "block2"):
        set_input(residual_network, f"Blocks/{name}", 0.0)
    collapsed_length = fit_rows(residual_network)
    assert collapsed_length != open_length
    for name in ("block1", "block2"):
        set_input(residual_network, f"Blocks/{name}", 1.0)
    set_input(residual_network, "Expansion Level", 0.0)
    assert fit_rows(residual_network) == collapsed_length


# ---------------------------------------------------------------- Filter Spread


@pytest.mark.parametrize("spread", [0.0, 0.5, 2.0])
def test_filter_spread_scales_each_map_s_offset_from_its_layer_s_centre(designed_network, spread):
    before = {index: map_centres(designed_network, index) for index in (CONV1, CONV2)}
    flat = cells_by_layer(designed_network)
    set_input(designed_network, "Filter Spread", spread)
    for index, maps in before.items():
        there = origin(designed_network, index)
        after = map_centres(designed_network, index)
        assert set(after) == set(maps)
        for channel, centre in maps.items():
            np.testing.assert_allclose(after[channel], there + spread * (centre - there), atol=1e-3)
    # Neurons stand in one column, not maps: nothing to spread.
    for index in FLAT_LAYERS:
        np.testing.assert_allclose(cells_by_layer(designed_network)[index], flat[index], atol=1e-4)


def test_filter_spread_scales_a_line_along_the_network_too(designed_network):
    set_input(designed_network, "conv1/Map Layout", 0.0)
    set_input(designed_network, "conv1/Line Direction", 1.0)
    along = map_centres(designed_network, CONV1)
    set_input(designed_network, "Filter Spread", 3.0)
    there = origin(designed_network, CONV1)
    for channel, centre in map_centres(designed_network, CONV1).items():
        np.testing.assert_allclose(centre, there + 3.0 * (along[channel] - there), atol=1e-3)


# ---------------------------------------------------------------- Reduced Depth


def test_reduced_depth_shows_every_layer_s_first_n_maps(designed_network):
    set_input(designed_network, "Reduced Depth", 3)
    # The input has one channel; every other layer with maps has more than 3.
    for index in (INPUT, CONV1, POOL1, CONV2, POOL2):
        assert set(map_centres(designed_network, index)) == ({0} if index == INPUT else {0, 1, 2}), f"layer {index}"
    # The shown maps are laid out as a layer of 3 maps is: a 2x2 grid, centred on the layer.
    pitch = 16 + GAP
    there = origin(designed_network, CONV1)
    expected = [there + [0, 0.5 * pitch, 0.5 * pitch], there + [0, -0.5 * pitch, 0.5 * pitch]]
    expected.append(there + [0, 0.5 * pitch, -0.5 * pitch])
    np.testing.assert_allclose([map_centres(designed_network, CONV1)[c] for c in range(3)], expected, atol=1e-3)


def test_a_layer_s_channels_shown_and_reduced_depth_take_the_fewer(designed_network):
    set_input(designed_network, "Reduced Depth", 5)
    set_input(designed_network, "conv2/Channels Shown", 2)
    set_input(designed_network, "conv1/Channels Shown", 7)
    assert set(map_centres(designed_network, CONV2)) == {0, 1}
    assert set(map_centres(designed_network, CONV1)) == {0, 1, 2, 3, 4}
    set_input(designed_network, "Reduced Depth", 0)
    assert set(map_centres(designed_network, CONV1)) == set(range(7))


# ---------------------------------------------------------------- Collapse Input


@pytest.fixture
def rgb_network(blender, tmp_path):
    """The digits design with a 16x16x3 input: three input maps in a 2x2 grid."""
    import json

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle
    from blender_cnn.scene.network import build_network

    design = json.loads((REPO / "presets" / "digits_cnn.json").read_text())
    design["input_shape"] = [16, 16, 3]
    return build_network(load_bundle(design_bundle(design, tmp_path / "rgb.bcnn.npz", seed=1)))


@pytest.mark.parametrize("collapse", [1.0, 0.5])
def test_collapse_input_stacks_the_input_s_channels_one_behind_another(rgb_network, collapse):
    side_by_side = map_centres(rgb_network, INPUT)
    others = {index: map_centres(rgb_network, index) for index in (CONV1, CONV2)}
    set_input(rgb_network, "Collapse Input", collapse)
    there = origin(rgb_network, INPUT)
    # Stacked: at the layer's centre, one cell apart along the network (the first in front, seen from the camera).
    stacked = {channel: there + [channel - 1.0, 0.0, 0.0] for channel in range(3)}
    centres = map_centres(rgb_network, INPUT)
    assert set(centres) == {0, 1, 2}
    for channel, centre in centres.items():
        expected = (1 - collapse) * side_by_side[channel] + collapse * stacked[channel]
        np.testing.assert_allclose(centre, expected, atol=1e-3)
    for index, maps in others.items():
        after = map_centres(rgb_network, index)
        for channel, centre in maps.items():
            np.testing.assert_allclose(after[channel], centre, atol=1e-3)


# ---------------------------------------------------------------- Line Direction per layer


def line_centres(network, layer_index, channels, direction):
    """A line of ``channels`` 16-cell maps: across the wall (direction 0) or along the network (1), and between."""
    pitch = 16 + GAP if layer_index == CONV1 else 8 + GAP
    u = np.arange(channels) - (channels - 1) / 2
    line = np.stack([u * pitch * 0.5 * direction, -u * pitch * (1 - direction), np.zeros(channels)], axis=1)
    return line + origin(network, layer_index)


def test_a_layer_s_line_direction_overrides_the_network_s(designed_network):
    for name in ("conv1", "pool1", "conv2"):
        set_input(designed_network, f"{name}/Map Layout", 0.0)
    set_input(designed_network, "conv1/Line Direction", 1.0)
    set_input(designed_network, "conv2/Line Direction", 0.25)

    def centres(index):
        found = map_centres(designed_network, index)
        return np.array([found[c] for c in sorted(found)])

    np.testing.assert_allclose(centres(CONV1), line_centres(designed_network, CONV1, 8, 1.0), atol=1e-3)
    np.testing.assert_allclose(centres(CONV2), line_centres(designed_network, CONV2, 16, 0.25), atol=1e-3)
    np.testing.assert_allclose(centres(POOL1), line_centres(designed_network, POOL1, 8, 0.0), atol=1e-3)
    # The network's Line Direction moves the layers that keep their own at -1 (the default), and no other.
    set_input(designed_network, "Line Direction", 1.0)
    set_input(designed_network, "conv1/Line Direction", 0.0)
    np.testing.assert_allclose(centres(CONV1), line_centres(designed_network, CONV1, 8, 0.0), atol=1e-3)
    np.testing.assert_allclose(centres(CONV2), line_centres(designed_network, CONV2, 16, 0.25), atol=1e-3)
    np.testing.assert_allclose(centres(POOL1), line_centres(designed_network, POOL1, 8, 1.0), atol=1e-3)


# ---------------------------------------------------------------- keyframes, panels


def test_the_article_s_controls_follow_their_keyframes(designed_network, blender):
    """Keyed on the modifier, they animate with no Python at frame change: what a render sees."""
    from blender_cnn.scene.network import network_input_path

    keys = {"Expansion Level": (0.0, 1.0), "Filter Spread": (1.0, 0.0), "Reduced Depth": (0, 2)}
    for name, values in keys.items():
        for frame, value in zip((1, 11), values):
            set_input(designed_network, name, value)
            designed_network.keyframe_insert(network_input_path(designed_network, name), frame=frame)
    scene = blender.context.scene
    scene.frame_set(1)
    assert summary_cells(designed_network, CONV1) == 16 * 16 and map_centres(designed_network, CONV1) == {}
    scene.frame_set(11)
    assert summary_cells(designed_network, CONV1) == 0
    centres = map_centres(designed_network, CONV1)
    assert set(centres) == {0, 1}
    for centre in centres.values():  # Filter Spread 0: every map at the layer's centre
        np.testing.assert_allclose(centre, origin(designed_network, CONV1), atol=1e-3)


def test_the_sidebar_and_every_layer_s_panel_show_the_controls(designed_network, blender):
    from ui_recorder import draw_network_panel

    from blender_cnn.nodes.network import input_identifiers
    from blender_cnn.scene.network import network_modifier

    blender.context.view_layer.objects.active = designed_network
    shown = draw_network_panel(blender)["props"]
    for name in ("Expansion Level", "Filter Spread", "Reduced Depth", "Collapse Input", "Line Direction"):
        assert name in shown
    inputs = input_identifiers(network_modifier(designed_network).node_group)
    assert {f"{name}/Line Direction" for name in ("input", "conv1", "pool1", "conv2", "pool2")} <= set(inputs)


def test_the_opening_in_numpy_is_the_node_tree_s():
    from blender_cnn.core.placement import opened

    assert [opened(0.5, rank, 5) for rank in range(5)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert math.isclose(opened(0.25, 1, 5), 0.15625)
