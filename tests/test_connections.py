"""Connections between dense layers: which weights are drawn, bundled or straight, colored by epoch, highlighted."""

import numpy as np
import pytest
from scene_readers import drawn_cells, evaluated_geometry, read_attribute

from blender_cnn.core import colormaps
from blender_cnn.core.connections import ALL, STRONGEST_PER_NEURON, STRONGEST_SHARE, EdgeSelection, selected_weights


def build(demo_bundle, **options):
    from blender_cnn.scene.network import build_network

    return build_network(demo_bundle, **options)


def set_input(network, name, value):
    from blender_cnn.scene.network import set_network_input

    set_network_input(network, name, value)


def drawn_curves(network):
    """(points (curves, P, 3), {curve attribute: values}) of the evaluated connections (curves of equal length)."""
    geometry = evaluated_geometry(network)
    curves = geometry.curves
    points = read_attribute(curves, "position")
    count = len(curves.curves)
    values = {
        name: read_attribute(curves, name)
        for name in ("source_cell", "target_cell", "weight", "weight_max", "edge_color")
    }
    return points.reshape(count, -1, 3), values


def cell_centre_table(network, demo_bundle):
    """World centre of every real cell, indexed by cell index."""
    from blender_cnn.core.cells import layer_cells

    centres, cells = drawn_cells(network)
    starts = {layer.layer_index: layer for layer in layer_cells(demo_bundle)}
    table = {}
    for centre, layer, channel, row, col, summary in zip(
        centres, cells["layer"], cells["channel"], cells["row"], cells["col"], cells["is_summary"]
    ):
        if summary:
            continue
        info = starts[int(layer)]
        index = info.start + (int(channel) * info.map_rows + int(row)) * info.map_cols + int(col)
        table[index] = centre
    return table


# --- which weights are drawn ---------------------------------------------------------------------------------


def test_strongest_per_neuron_keeps_exactly_the_k_largest_incoming_magnitudes():
    kernel = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    source, target = selected_weights(kernel, EdgeSelection(STRONGEST_PER_NEURON, per_neuron=5))
    assert len(source) == 6 * 5
    for unit in range(6):
        kept = set(source[target == unit].tolist())
        expected = set(np.argsort(-np.abs(kernel[:, unit]))[:5].tolist())
        assert kept == expected


def test_strongest_share_keeps_exactly_that_share_of_the_largest_magnitudes():
    kernel = np.random.default_rng(1).normal(size=(30, 7)).astype(np.float32)
    source, target = selected_weights(kernel, EdgeSelection(STRONGEST_SHARE, share=0.1))
    assert len(source) == 21  # ceil(0.1 * 210)
    threshold = np.sort(np.abs(kernel).ravel())[::-1][20]
    assert np.all(np.abs(kernel[source, target]) >= threshold)
    assert (np.abs(kernel) >= threshold).sum() == 21


def test_equal_magnitudes_go_to_the_lower_index_so_the_choice_is_always_the_same():
    kernel = np.array([[1.0, -2.0], [-1.0, 2.0], [1.0, 0.5], [0.2, -2.0]], np.float32)
    source, target = selected_weights(kernel, EdgeSelection(STRONGEST_PER_NEURON, per_neuron=2))
    assert list(zip(source.tolist(), target.tolist())) == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_small_layers_draw_every_weight_and_huge_ones_their_strongest_per_neuron():
    source, _target = selected_weights(np.ones((100, 10), np.float32), EdgeSelection())
    assert len(source) == 1000
    wide = EdgeSelection().for_kernel(8192, 256)
    assert wide.mode == STRONGEST_PER_NEURON and wide.per_neuron == 78
    assert EdgeSelection(ALL).for_kernel(8192, 256).mode == ALL


def test_bad_selections_are_refused_with_the_reason():
    from blender_cnn.core.errors import BlenderCNNError

    with pytest.raises(BlenderCNNError, match="unknown mode 'SOME'"):
        EdgeSelection("SOME")
    with pytest.raises(BlenderCNNError, match="per_neuron must be at least 1"):
        EdgeSelection(STRONGEST_PER_NEURON, per_neuron=0)
    with pytest.raises(BlenderCNNError, match=r"share must be in \(0, 1\]"):
        EdgeSelection(STRONGEST_SHARE, share=1.5)


@pytest.mark.tf
@pytest.mark.bpy
def test_the_scene_draws_the_selected_weights_and_says_how_many(blender, demo_bundle):
    network = build(demo_bundle, edges=EdgeSelection(STRONGEST_PER_NEURON, per_neuron=3))
    _points, curves = drawn_curves(network)
    dense = [layer for layer in demo_bundle.layers if layer.type == "Dense"]
    expected_count = sum(layer.output_shape[0] * 3 for layer in dense)
    assert len(curves["weight"]) == expected_count
    first = dense[0]
    kernel = demo_bundle.weights(first.name)["kernel"]
    from blender_cnn.core.cells import layer_cells

    starts = {layer.name: layer.start for layer in layer_cells(demo_bundle)}
    mine = (curves["target_cell"] - starts[first.name] >= 0) & (
        curves["target_cell"] - starts[first.name] < first.output_shape[0]
    )
    for unit in range(first.output_shape[0]):
        chosen = curves["source_cell"][mine & (curves["target_cell"] == starts[first.name] + unit)]
        expected = set((np.argsort(-np.abs(kernel[:, unit]))[:3] + starts[first.inputs[0]]).tolist())
        assert set(chosen.tolist()) == expected
    counts = {entry["layer"]: (entry["drawn"], entry["total"]) for entry in network["blender_cnn_connections"]}
    assert counts[first.name] == (first.output_shape[0] * 3, kernel.size)


# --- bundled and straight --------------------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.bpy
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_curves_start_and_end_exactly_at_their_neurons(demo_network, demo_bundle, strength):
    set_input(demo_network, "Bundling Strength", strength)
    points, curves = drawn_curves(demo_network)
    centres = cell_centre_table(demo_network, demo_bundle)
    starts = np.array([centres[int(cell)] for cell in curves["source_cell"]])
    ends = np.array([centres[int(cell)] for cell in curves["target_cell"]])
    np.testing.assert_allclose(points[:, 0], starts, atol=1e-4)
    np.testing.assert_allclose(points[:, -1], ends, atol=1e-4)


@pytest.mark.tf
@pytest.mark.bpy
def test_strength_zero_draws_straight_lines_and_one_the_bundled_points(demo_network, demo_bundle):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.core.connections import dense_connections

    set_input(demo_network, "Bundling Strength", 0.0)
    straight, _curves = drawn_curves(demo_network)
    count = straight.shape[1]
    t = np.linspace(0.0, 1.0, count)[None, :, None]
    np.testing.assert_allclose(straight, straight[:, :1] * (1 - t) + straight[:, -1:] * t, atol=1e-4)

    set_input(demo_network, "Bundling Strength", 1.0)
    bundled, _curves = drawn_curves(demo_network)
    _arrays, points, points_per_edge, _drawn = dense_connections(demo_bundle, layer_cells(demo_bundle))
    assert points_per_edge == count
    offsets = points["bundle_offset"].reshape(-1, count, 3)
    np.testing.assert_allclose(bundled, straight + offsets, atol=1e-4)
    assert np.abs(offsets).max() > 1.0  # bundling really moves the curves

    set_input(demo_network, "Bundling Strength", 0.5)
    halfway, _curves = drawn_curves(demo_network)
    np.testing.assert_allclose(halfway, straight + 0.5 * offsets, atol=1e-4)


@pytest.mark.tf
@pytest.mark.bpy
def test_bundling_uses_less_ink_from_the_camera(demo_network):
    from blender_cnn.core.drawing_metrics import distortion, drawing_bounds, ink
    from blender_cnn.scene.stage import VIEW_DIRECTION

    set_input(demo_network, "Bundling Strength", 0.0)
    straight, _curves = drawn_curves(demo_network)
    set_input(demo_network, "Bundling Strength", 1.0)
    bundled, _curves = drawn_curves(demo_network)
    view = tuple(VIEW_DIRECTION)
    frame = drawing_bounds(straight, view)
    straight_ink = ink(straight, view, resolution=512, bounds=frame)
    bundled_ink = ink(bundled, view, resolution=512, bounds=frame)
    # The goals of the bundling: at most 60% of the ink, curves at most 30% longer on average.
    assert bundled_ink <= 0.6 * straight_ink, (bundled_ink, straight_ink)
    assert distortion(bundled) < 1.3


# --- color by epoch, highlight ---------------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.bpy
@pytest.mark.parametrize("epoch", [0, -1])
def test_edge_colors_follow_the_weights_of_the_chosen_epoch(blender, demo_bundle, epoch):
    network = build(demo_bundle, epoch=epoch)
    _points, curves = drawn_curves(network)
    dense = next(layer for layer in demo_bundle.layers if layer.type == "Dense")
    kernel = demo_bundle.weights(dense.name, epoch)["kernel"]
    np.testing.assert_allclose(curves["weight"][: kernel.shape[0]], kernel[:, 0], rtol=1e-6)
    expected = colormaps.sample(colormaps.WEIGHT_COLORMAP, (curves["weight"] / curves["weight_max"] + 1.0) / 2.0)
    np.testing.assert_allclose(curves["edge_color"][:, :3], expected, atol=2e-3)
    other = demo_bundle.weights(dense.name, 0 if epoch == -1 else -1)["kernel"]
    assert not np.allclose(curves["weight"][: kernel.shape[0]], other[:, 0])


@pytest.mark.tf
@pytest.mark.bpy
def test_a_highlighted_neuron_keeps_its_edges_bright_and_dims_the_rest(demo_network):
    _points, before = drawn_curves(demo_network)
    neuron = int(before["target_cell"][0])
    set_input(demo_network, "Highlight Neuron", neuron)
    _points, after = drawn_curves(demo_network)
    mine = (after["source_cell"] == neuron) | (after["target_cell"] == neuron)
    assert mine.sum() > 0 and (~mine).sum() > 0
    np.testing.assert_allclose(after["edge_color"][mine, :3], before["edge_color"][mine, :3], atol=1e-5)
    # The others keep their hue and fade, all by one factor, to well under half their brightness yet not to black.
    dimmed, original = after["edge_color"][~mine, :3], before["edge_color"][~mine, :3]
    factor = dimmed.sum() / original.sum()
    np.testing.assert_allclose(dimmed, original * factor, atol=1e-5)
    assert 0.02 < factor < 0.5, factor
    # How dim is the user's choice.
    set_input(demo_network, "Dimmed Brightness", 0.3)
    _points, chosen = drawn_curves(demo_network)
    np.testing.assert_allclose(chosen["edge_color"][~mine, :3], original * 0.3, atol=1e-5)
    np.testing.assert_allclose(chosen["edge_color"][mine, :3], before["edge_color"][mine, :3], atol=1e-5)


# --- operators, as a user's clicks ---------------------------------------------------------------------------


def active_network(blender, demo_bundle):
    network = build(demo_bundle)
    blender.context.view_layer.objects.active = network
    return network


@pytest.mark.tf
@pytest.mark.bpy
def test_draw_connections_operator_redraws_the_strongest_and_keeps_the_settings(blender, demo_bundle):
    from scene_readers import label_face_count

    from blender_cnn.scene.network import get_network_input

    network = active_network(blender, demo_bundle)
    set_input(network, "Bundling Strength", 0.25)
    labels_before = label_face_count(network)
    assert blender.ops.bcnn.draw_connections(mode="STRONGEST_SHARE", share=5.0) == {"FINISHED"}
    _points, curves = drawn_curves(network)
    dense = [layer for layer in demo_bundle.layers if layer.type == "Dense"]
    totals = [int(np.prod(demo_bundle.weights(layer.name)["kernel"].shape)) for layer in dense]
    assert len(curves["weight"]) == sum(int(np.ceil(0.05 * total)) for total in totals)
    assert get_network_input(network, "Bundling Strength") == pytest.approx(0.25)
    record = network["blender_cnn_connections"]
    assert [entry["drawn"] for entry in record] == [int(np.ceil(0.05 * total)) for total in totals]
    assert record[0]["selection"] == "strongest 5%"
    texts = [
        node.inputs["Text"].default_value
        for node in network.modifiers["BlenderCNN"].node_group.nodes
        if node.bl_idname == "GeometryNodeGroup" and node.node_tree.name.startswith("BCNN Layer Label")
    ]
    assert any(text.endswith("410 of 8,192 connections (strongest 5%)") for text in texts), texts
    assert label_face_count(network) != labels_before  # the drawn label changed with its text


@pytest.mark.tf
@pytest.mark.bpy
def test_highlight_operator_picks_the_dense_neuron_at_the_cursor(blender, demo_bundle):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.scene.network import get_network_input

    network = active_network(blender, demo_bundle)
    dense = next(layer for layer in demo_bundle.layers if layer.type == "Dense")
    info = next(layer for layer in layer_cells(demo_bundle) if layer.name == dense.name)
    centres = cell_centre_table(network, demo_bundle)
    blender.context.scene.cursor.location = centres[info.start + 5] + np.array([0.0, 0.0, 0.3])
    assert blender.ops.bcnn.highlight_neuron() == {"FINISHED"}
    assert get_network_input(network, "Highlight Neuron") == info.start + 5
    assert blender.ops.bcnn.highlight_neuron(clear=True) == {"FINISHED"}
    assert get_network_input(network, "Highlight Neuron") == -1


@pytest.mark.bpy
def test_connection_operators_need_a_network(blender):
    assert not blender.ops.bcnn.draw_connections.poll()
    assert not blender.ops.bcnn.highlight_neuron.poll()
