"""Importance in the scene: cells and connections colored by it for a keyframable class, and pruning by it."""

import colorsys

import numpy as np
import pytest

from blender_cnn.core import importance
from blender_cnn.core.connections import (
    BY_IMPORTANCE,
    STRONGEST_PER_NEURON,
    STRONGEST_SHARE,
    EdgeSelection,
    selected_weights,
)
from blender_cnn.nodes.builder import tree_nodes

pytestmark = pytest.mark.tf  # the trained demo: labelled samples and the gradients of its dense layers


def edge_importance_by_hand(bundle, layer_name, class_index):
    """|w_ij| times the mean over the class's samples of |a_i| |g_ij| (docs/importance.md), sample by sample.

    a: the dense layer's input, g: the gradient of the class's score with respect to its pre-activation;
    a class without samples takes every sample; class index K (all classes) is the mean of the K classes.
    """
    epoch = bundle.epochs[-1]
    inputs = np.abs(bundle.layer_activations(bundle.layer(layer_name).inputs[0], epoch))  # (samples, in)
    gradients = np.abs(bundle.output_gradients(layer_name, epoch))  # (samples, classes, out)
    kernel = np.abs(bundle.weights(layer_name, epoch)["kernel"])
    labels = bundle.array("samples/labels")

    def for_class(k):
        samples = np.flatnonzero(labels == k) if np.any(labels == k) else np.arange(len(labels))
        return kernel * np.mean([np.outer(inputs[s], gradients[s, k]) for s in samples], axis=0)

    classes = len(bundle.class_names)
    return for_class(class_index) if class_index < classes else np.mean([for_class(k) for k in range(classes)], axis=0)


@pytest.mark.parametrize(
    "selection",
    [
        EdgeSelection(STRONGEST_PER_NEURON, per_neuron=3, rank_by=BY_IMPORTANCE, importance_class=2),
        EdgeSelection(STRONGEST_SHARE, share=0.1, rank_by=BY_IMPORTANCE),
    ],
)
def test_pruning_by_importance_keeps_exactly_the_most_important_edges(demo_bundle, selection):
    scores = selection.strengths(demo_bundle, "dense1", demo_bundle.epochs[-1], None)
    class_index = selection.importance_class if selection.importance_class >= 0 else len(demo_bundle.class_names)
    np.testing.assert_allclose(
        scores, edge_importance_by_hand(demo_bundle, "dense1", class_index), rtol=1e-5, atol=1e-9
    )
    source, target = selected_weights(scores, selection)
    kept = set(zip(source.tolist(), target.tolist()))
    if selection.mode == STRONGEST_PER_NEURON:
        for unit in range(scores.shape[1]):
            best = np.argsort(-scores[:, unit], kind="stable")[:3]
            assert {(int(i), unit) for i in best} == {edge for edge in kept if edge[1] == unit}
    else:
        keep = int(np.ceil(0.1 * scores.size))
        flat = np.argsort(-scores.T.ravel(), kind="stable")[:keep]  # ties to the lower (output, input) index
        assert kept == {(int(i % scores.shape[0]), int(i // scores.shape[0])) for i in flat}
    weights_kept = selected_weights(
        demo_bundle.weights("dense1")["kernel"],
        EdgeSelection(selection.mode, per_neuron=selection.per_neuron, share=selection.share),
    )
    assert kept != set(zip(*(part.tolist() for part in weights_kept)))  # importance is not just the weight


def drawn_cell_colors(blender, network, layer_index):
    from blender_cnn.scene.drawn import drawn_quads
    from blender_cnn.scene.materials import CELL_MATERIAL

    quads, _geometry = drawn_quads(network, CELL_MATERIAL)
    layer = quads.attribute("layer")
    summary = quads.attribute("is_summary") if quads.has("is_summary") else np.zeros_like(layer)
    chosen = (layer == layer_index) & (summary == 0)
    colors = quads.attribute("cell_color").reshape(-1, 4)[chosen]
    return colors, quads.attribute("channel")[chosen]


@pytest.mark.bpy
def test_cells_show_a_chosen_class_in_its_hue_and_as_bright_as_their_importance(blender, demo_bundle):
    from blender_cnn.scene.network import build_network, set_network_input

    network = build_network(demo_bundle)
    conv2 = demo_bundle.layer("conv2")
    set_network_input(network, "Show Importance", 1.0)
    set_network_input(network, "Importance Class", 4)
    colors, channels = drawn_cell_colors(blender, network, conv2.index)
    per_channel = importance.neuron_importance(demo_bundle, "conv2", len(demo_bundle.epochs) - 1)[4]
    expected_value = per_channel / per_channel.max()
    for channel in (0, int(np.argmax(per_channel)), int(np.argmin(per_channel))):
        hue, saturation, value = colorsys.rgb_to_hsv(*colors[channels == channel][0, :3])
        assert value == pytest.approx(expected_value[channel], abs=2e-3)
        assert value < 1e-3 or hue == pytest.approx(0.4, abs=2e-3)  # class 4 of 10
    # All classes: each channel takes the hue of the class it matters most for.
    set_network_input(network, "Importance Class", -1)
    colors, channels = drawn_cell_colors(blender, network, conv2.index)
    rows = importance.neuron_importance(demo_bundle, "conv2", len(demo_bundle.epochs) - 1)
    top = np.argmax(rows[:-1], axis=0)
    for channel in range(rows.shape[1]):
        hue, _saturation, value = colorsys.rgb_to_hsv(*colors[channels == channel][0, :3])
        assert value == pytest.approx(rows[-1, channel] / rows[-1].max(), abs=2e-3)
        assert hue == pytest.approx(top[channel] / 10, abs=2e-3) or (top[channel] == 0 and hue > 0.99)
    # Back to activations: nothing of the importance color is left.
    set_network_input(network, "Show Importance", 0.0)
    colors_off, _ = drawn_cell_colors(blender, network, conv2.index)
    assert not np.allclose(colors_off, colors)


@pytest.mark.bpy
def test_connections_brighten_with_their_importance_and_the_legend_names_the_method(blender, demo_bundle):
    from blender_cnn.scene.network import build_network, network_modifier, set_network_input

    network = build_network(demo_bundle)
    set_network_input(network, "Show Importance", 1.0)
    set_network_input(network, "Importance Class", 7)
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.scene.drawn import read_attribute

    depsgraph = blender.context.evaluated_depsgraph_get()
    geometry = network.evaluated_get(depsgraph).evaluated_geometry()  # owns the curves: keep it while reading
    curves = geometry.curves
    colors, source, target = (read_attribute(curves, name) for name in ("edge_color", "source_cell", "target_cell"))

    cells = {layer.name: layer for layer in layer_cells(demo_bundle)}
    in_dense1 = (target >= cells["dense1"].start) & (target < cells["dense1"].start + cells["dense1"].count)
    scores = importance.edge_importance(demo_bundle, "dense1", len(demo_bundle.epochs) - 1, 7)
    expected = scores[source[in_dense1] - cells["flatten"].start, target[in_dense1] - cells["dense1"].start]
    values = colors.reshape(-1, 4)[in_dense1, :3].max(axis=1)
    np.testing.assert_allclose(values, expected / expected.max(), atol=2e-3)
    titles = [
        node.string
        for node in tree_nodes(network_modifier(network).node_group)
        if node.bl_idname == "FunctionNodeInputString"
    ]
    label = importance.METHOD_LABELS[importance.importance_method(demo_bundle)]
    assert any(title.startswith(f"importance ({label})") for title in titles)


@pytest.mark.bpy
def test_draw_connections_by_importance_draws_exactly_those_edges_and_says_so(blender, demo_bundle):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.scene.drawn import read_attribute
    from blender_cnn.scene.network import build_network

    network = build_network(demo_bundle)
    blender.context.view_layer.objects.active = network
    assert blender.ops.bcnn.draw_connections(
        mode="STRONGEST_PER_NEURON", per_neuron=4, rank_by="IMPORTANCE", importance_class=5, chosen="EPOCH"
    ) == {"FINISHED"}
    cells = {layer.name: layer for layer in layer_cells(demo_bundle)}
    source, target = (read_attribute(network.data, name) for name in ("source_cell", "target_cell"))
    in_dense1 = (target >= cells["dense1"].start) & (target < cells["dense1"].start + cells["dense1"].count)
    drawn = set(
        zip((source[in_dense1] - cells["flatten"].start).tolist(), (target[in_dense1] - cells["dense1"].start).tolist())
    )
    scores = importance.edge_importance(demo_bundle, "dense1", len(demo_bundle.epochs) - 1, 5)
    expected = {
        (int(i), unit) for unit in range(scores.shape[1]) for i in np.argsort(-scores[:, unit], kind="stable")[:4]
    }
    assert drawn == expected
    name = demo_bundle.class_names[5]
    assert (
        network["blender_cnn_connections"][0]["selection"]
        == f"strongest 4 per neuron by importance for class {name} at epoch {demo_bundle.epochs[-1]}"
    )


@pytest.mark.bpy
def test_the_class_shown_can_be_keyframed(blender, demo_bundle):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.scene.network import build_network, network_input_path, set_network_input

    network = build_network(demo_bundle)
    set_network_input(network, "Show Importance", 1.0)
    for frame, shown in ((1, 2), (10, 8)):
        set_network_input(network, "Importance Class", shown)
        network.keyframe_insert(network_input_path(network, "Importance Class"), frame=frame)
    output = next(cells for cells in layer_cells(demo_bundle) if cells.name == "output")
    for frame, shown in ((1, 2), (10, 8)):
        blender.context.scene.frame_set(frame)
        colors, channels = drawn_cell_colors(blender, network, output.layer_index)
        brightest = int(np.argmax(colors[:, :3].max(axis=1)))
        # The output layer's importance for a class lies on that class's own neuron, in its hue.
        assert brightest == shown
        assert colorsys.rgb_to_hsv(*colors[brightest, :3])[0] == pytest.approx(shown / 10, abs=2e-3)
