"""The sidebar's Layers list: a row per layer (units and blocks of a graph) with its type and shape, a filter, the
selected layer's own modifier inputs (which change that layer only, and key like any property), Frame Layer and
Layer at Cursor. Drawn with the stand-in layout of ui_recorder, on bundles made in numpy (no TensorFlow)."""

from types import SimpleNamespace

import numpy as np
import pytest
from scene_readers import cell_centre, drawn_cells
from ui_recorder import RecordingLayout, draw_sidebar_panels, modal_driver

pytestmark = pytest.mark.bpy

DIGITS_ROWS = ("input", "conv1", "pool1", "conv2", "pool2", "flatten", "dense1", "output")


def active(blender, bundle, **options):
    """``bundle``'s network built into the scene, and the active object."""
    from blender_cnn.scene.network import build_network

    network = build_network(bundle, **options)
    blender.context.view_layer.objects.active = network
    return network


def layer_list(blender):
    return blender.context.window_manager.bcnn_layer_list


def select(blender, name):
    """Click the row ``name`` in the Layers list (after a draw made the rows)."""
    draw_sidebar_panels(blender)
    state = layer_list(blender)
    state.active_index = [row.name for row in state.rows].index(name)


def selected_controls(blender):
    """{shown text: (data, attribute)} of the properties the Layers panel draws for the selected layer."""
    record = draw_sidebar_panels(blender)["Layers"]
    return {text: (data, attribute) for data, attribute, text in record["prop_data"] if text != "filter_text"}


def cells_by_layer(network):
    """{layer index: its drawn cells' centres, sorted}."""
    centres, cells = drawn_cells(network)
    by_layer = {}
    for index in np.unique(cells["layer"]):
        mine = centres[cells["layer"] == index]
        by_layer[int(index)] = mine[np.lexsort(mine.T[::-1])]
    return by_layer


def changed_layers(before, after):
    return {
        index
        for index in set(before) | set(after)
        if index not in before
        or index not in after
        or before[index].shape != after[index].shape
        or not np.allclose(before[index], after[index], atol=1e-4)
    }


# ---------------------------------------------------------------- rows


def test_a_sequential_network_lists_every_layer_with_its_type_and_output_shape(blender, digits_design_bundle):
    active(blender, digits_design_bundle)
    record = draw_sidebar_panels(blender)["Layers"]
    assert [entry[0] for entry in record["lists"]] == ["BCNN_UL_layers"]
    rows = {row.name: row for row in layer_list(blender).rows}
    assert tuple(rows) == DIGITS_ROWS
    assert (rows["conv1"].layer_type, rows["conv1"].shape) == ("Conv2D", "16x16x8")
    assert (rows["pool2"].layer_type, rows["pool2"].shape) == ("MaxPooling2D", "4x4x16")
    assert (rows["dense1"].layer_type, rows["dense1"].shape) == ("Dense", "32")


def test_each_row_draws_its_name_type_and_shape(blender, digits_design_bundle):
    from blender_cnn.ui.layer_list import BCNN_UL_layers

    active(blender, digits_design_bundle)
    draw_sidebar_panels(blender)
    state = layer_list(blender)
    layout = RecordingLayout()
    row = state.rows[1]
    BCNN_UL_layers.draw_item(
        SimpleNamespace(layout_type="DEFAULT"), blender.context, layout, state, row, 0, state, "active_index", 1
    )
    assert layout.record["labels"] == ["conv1", "Conv2D", "16x16x8"]


def test_a_graph_lists_its_units_and_blocks(blender, residual_design_bundle):
    active(blender, residual_design_bundle)
    draw_sidebar_panels(blender)
    rows = {row.name: row for row in layer_list(blender).rows}
    assert list(rows) == ["input", "stem", "block1", "block2", "pool", "output"]
    assert (rows["block1"].kind, rows["block1"].layer_type, rows["block1"].shape) == (
        "BLOCK",
        "Block of 3 layers",
        "8x8x4",
    )
    assert rows["block1"].expand == "Blocks/block1" and rows["stem"].expand == ""
    index = {layer.name: layer.index for layer in residual_design_bundle.layers}
    assert rows["block1"].layer_indices() == [index["block1_a"], index["block1_b"], index["block1_add"]]
    assert (rows["pool"].layer_type, rows["pool"].shape) == ("GlobalAvgPool", "4")


def test_a_network_whose_bundle_is_gone_still_lists_its_layers_with_maps(blender, digits_design_bundle):
    network = active(blender, digits_design_bundle)
    network["blender_cnn_bundle"] = "/no/such/bundle.bcnn.npz"
    select(blender, "conv2")
    assert [row.name for row in layer_list(blender).rows] == ["input", "conv1", "pool1", "conv2", "pool2"]
    assert {"Map Layout", "Fold", "Channels Shown", "Map Fold"} <= set(selected_controls(blender))


def test_the_rows_follow_the_active_network_and_each_keeps_its_selected_layer(
    blender, digits_design_bundle, residual_design_bundle
):
    digits = active(blender, digits_design_bundle)
    select(blender, "conv2")
    residual = active(blender, residual_design_bundle)
    select(blender, "block2")
    blender.context.view_layer.objects.active = digits
    draw_sidebar_panels(blender)
    state = layer_list(blender)
    assert state.rows[state.active_index].name == "conv2"
    blender.context.view_layer.objects.active = residual
    draw_sidebar_panels(blender)
    assert state.rows[state.active_index].name == "block2"


# ---------------------------------------------------------------- the filter


def test_the_filter_keeps_the_layers_whose_name_holds_it():
    from blender_cnn.ui.layer_list import filter_flags

    names = ["input", "conv1", "pool1", "conv2", "block_3_expand_relu", "block_13_expand_relu"]
    bit = 1 << 30
    assert filter_flags(names, "", bit) == [], "no filter: every row"
    assert filter_flags(names, "conv", bit) == [0, bit, 0, bit, 0, 0]
    assert filter_flags(names, "POOL", bit) == [0, 0, bit, 0, 0, 0], "case does not matter"
    assert filter_flags(names, "block_1*relu", bit) == [0, 0, 0, 0, 0, bit], "* and ? are wildcards"


def test_the_list_filters_by_the_filter_box_or_its_own_filter(blender, digits_design_bundle):
    from blender_cnn.ui.layer_list import BCNN_UL_layers

    active(blender, digits_design_bundle)
    record = draw_sidebar_panels(blender)["Layers"]
    assert "filter_text" in record["props"], "the filter box stands above the list"
    state, bit = layer_list(blender), 1 << 30
    ui_list = SimpleNamespace(filter_name="", bitflag_filter_item=bit, use_filter_sort_alpha=False)
    state.filter_text = "pool"
    flags, order = BCNN_UL_layers.filter_items(ui_list, blender.context, state, "rows")
    assert [row.name for row, flag in zip(state.rows, flags) if flag & bit] == ["pool1", "pool2"] and order == []
    state.filter_text = ""
    ui_list.filter_name = "dense"
    flags, _order = BCNN_UL_layers.filter_items(ui_list, blender.context, state, "rows")
    assert [row.name for row, flag in zip(state.rows, flags) if flag & bit] == ["dense1"]


# ---------------------------------------------------------------- the selected layer's inputs


def test_the_selected_layer_shows_its_own_modifier_inputs(blender, digits_design_bundle):
    from blender_cnn.scene.network import network_input_path

    network = active(blender, digits_design_bundle)
    select(blender, "conv1")
    controls = selected_controls(blender)
    assert {"Map Layout", "Line Direction", "Fold", "Channels Shown", "Map Fold"} == set(controls)
    for name, (data, attribute) in controls.items():
        assert data.path_from_id(attribute) == network_input_path(network, f"conv1/{name}"), name
    select(blender, "dense1")
    assert selected_controls(blender) == {}
    assert "No feature maps to lay out" in draw_sidebar_panels(blender)["Layers"]["labels"]


@pytest.mark.parametrize(("name", "value"), [("Fold", 1.0), ("Map Layout", 0.0), ("Channels Shown", 3)])
def test_the_selected_layer_s_controls_change_that_layer_only(blender, digits_design_bundle, name, value):
    network = active(blender, digits_design_bundle)
    before = cells_by_layer(network)
    select(blender, "conv2")
    data, attribute = selected_controls(blender)[name]
    setattr(data, attribute, value)
    network.update_tag()  # what Blender's UI does after a property changes; Python's setattr does not
    assert changed_layers(before, cells_by_layer(network)) == {digits_design_bundle.layer("conv2").index}


def test_a_block_s_row_shows_its_expand_and_its_controls_change_its_units_only(blender, residual_design_bundle):
    from blender_cnn.scene.network import set_network_input

    network = active(blender, residual_design_bundle)
    set_network_input(network, "Blocks/block1", 1.0)
    select(blender, "block1")
    controls = selected_controls(blender)
    assert {"Expand", "Map Layout", "Fold", "Channels Shown", "Map Fold"} <= set(controls)
    before = cells_by_layer(network)
    data, attribute = controls["Fold"]
    setattr(data, attribute, 1.0)
    network.update_tag()
    index = {layer.name: layer.index for layer in residual_design_bundle.layers}
    assert changed_layers(before, cells_by_layer(network)) == {index[n] for n in ("block1_a", "block1_b", "block1_add")}


def test_a_keyframe_on_a_layer_s_input_in_the_panel_animates_the_layer_in_the_saved_file(
    blender, digits_design_bundle, tmp_path
):
    """As I over the property does: the panel's own property gets the keys, and the file plays them alone."""
    name = active(blender, digits_design_bundle).name
    select(blender, "conv1")
    data, attribute = selected_controls(blender)["Fold"]
    for frame, value in ((1, 0.0), (10, 1.0)):
        setattr(data, attribute, value)
        data.keyframe_insert(attribute, frame=frame)
    path = tmp_path / "keyed.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    blender.ops.wm.open_mainfile(filepath=str(path))
    network = blender.data.objects[name]
    conv1 = digits_design_bundle.layer("conv1").index
    scene = blender.context.scene
    scene.frame_set(1)
    _centres, cells = drawn_cells(network)
    mine = cells["layer"] == conv1
    assert (cells["is_summary"][mine] == 0).all() and len(np.unique(cells["channel"][mine])) == 8
    at_1 = cells_by_layer(network)
    scene.frame_set(10)
    _centres, cells = drawn_cells(network)
    mine = cells["layer"] == conv1
    assert (cells["is_summary"][mine] > 0).all() and mine.sum() == 16 * 16, "folded into one summary map"
    assert changed_layers(at_1, cells_by_layer(network)) == {conv1}


# ---------------------------------------------------------------- Frame Layer and Layer at Cursor


def test_frame_layer_points_the_view_at_the_selected_layer_and_reports_where_it_is(blender, digits_design_bundle):
    import math

    from blender_cnn.ui.layer_list import BCNN_OT_frame_layer, layer_bounds

    network = active(blender, digits_design_bundle)
    select(blender, "pool2")
    low, high = layer_bounds(network, [digits_design_bundle.layer("pool2").index])
    region = SimpleNamespace(view_location=None, view_distance=None, view_perspective="CAMERA")
    view = SimpleNamespace(type="VIEW_3D", lens=50.0, region_3d=region)
    context = SimpleNamespace(
        active_object=network, window_manager=blender.context.window_manager, space_data=view, screen=None
    )
    operator = modal_driver(BCNN_OT_frame_layer, layer="")
    assert operator.execute(context) == {"FINISHED"}
    assert region.view_perspective == "PERSP", "out of the camera's view, which would not move"
    np.testing.assert_allclose(region.view_location, (low + high) / 2, atol=1e-4)
    radius = np.linalg.norm(high - low) / 2
    assert region.view_distance * math.tan(math.atan(18 / 50)) > radius, "the whole layer is in view"
    ((kind, text),) = operator.reports
    assert kind == {"INFO"} and text.startswith("pool2: from (") and text.endswith("framed in 1 view")
    # From a script or the background, by name: it frames nothing and says where the layer is.
    assert blender.ops.bcnn.frame_layer(layer="conv1") == {"FINISHED"}


def test_layer_at_cursor_selects_the_layer_of_the_cell_there(blender, digits_design_bundle, residual_design_bundle):
    from blender_cnn.ui.layer_list import ACTIVE_LAYER_PROPERTY

    network = active(blender, digits_design_bundle)
    blender.context.scene.cursor.location = cell_centre(network, digits_design_bundle.layer("pool1").index, 3, 2, 1)
    assert blender.ops.bcnn.select_layer_at_cursor() == {"FINISHED"}
    state = layer_list(blender)
    assert state.rows[state.active_index].name == "pool1" and network[ACTIVE_LAYER_PROPERTY] == "pool1"

    network = active(blender, residual_design_bundle)
    add = residual_design_bundle.layer("block2_add").index
    blender.context.scene.cursor.location = cell_centre(network, add, 1, 4, 4)
    assert blender.ops.bcnn.select_layer_at_cursor() == {"FINISHED"}
    assert state.rows[state.active_index].name == "block2", "a block's cell selects its block"
