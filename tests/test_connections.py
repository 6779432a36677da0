"""Connections between dense layers: which weights are drawn, bundled or straight, colored by epoch, highlighted."""

import numpy as np
import pytest
from scene_readers import drawn_cells, evaluated_geometry, read_attribute

from blender_cnn.core import colormaps
from blender_cnn.core.connections import (
    ALL,
    AT_EPOCH,
    STRONGEST_PER_NEURON,
    STRONGEST_SHARE,
    EdgeSelection,
    selected_over_run,
    selected_weights,
)
from blender_cnn.nodes.builder import tree_nodes


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


# --- which weights are drawn over the run --------------------------------------------------------------------


def strongest_by_hand(kernel, keep):
    """Per output unit, the set of the ``keep`` inputs of largest magnitude (ties to the lower index)."""
    return [set(np.argsort(-np.abs(kernel[:, unit]), kind="stable")[:keep].tolist()) for unit in range(kernel.shape[1])]


def union_by_hand(kernels, keep):
    """Per output unit, the union over the epochs of each epoch's ``keep`` strongest."""
    per_epoch = [strongest_by_hand(kernel, keep) for kernel in kernels]
    return [set().union(*(chosen[unit] for chosen in per_epoch)) for unit in range(kernels[0].shape[1])]


def drawn_sets(source, target, outputs):
    return [set(source[target == unit].tolist()) for unit in range(outputs)]


def test_over_the_run_each_epochs_strongest_weight_is_drawn():
    """Three epochs, each with another strongest incoming weight of the one neuron: a count of 3 draws all three."""
    kernels = [
        np.array([[value] for value in row], np.float32) for row in ([9, 1, 2, 0, 1], [1, 0, 2, 8, 1], [1, 7, 0, 0, 3])
    ]
    source, target = selected_over_run(kernels, EdgeSelection(STRONGEST_PER_NEURON, per_neuron=3))
    assert sorted(source.tolist()) == [0, 1, 3] and set(target.tolist()) == {0}
    # At one epoch the same count draws that epoch's three strongest only.
    source, _target = selected_weights(kernels[2], EdgeSelection(STRONGEST_PER_NEURON, per_neuron=3))
    assert sorted(source.tolist()) == [0, 1, 4]


@pytest.mark.parametrize("per_neuron", [1, 4, 9])
def test_the_drawn_set_is_the_union_of_the_per_epoch_strongest_within_the_same_count(per_neuron):
    """Weights drifting over 6 epochs: each neuron draws the union of every epoch's strongest r, for the largest r
    whose union fits in ``per_neuron``, filled up to ``per_neuron`` from the union of every epoch's strongest r + 1."""
    rng = np.random.default_rng(4)
    kernels = list(np.cumsum(rng.normal(size=(6, 40, 7)).astype(np.float32), axis=0))
    source, target = selected_over_run(kernels, EdgeSelection(STRONGEST_PER_NEURON, per_neuron=per_neuron))
    drawn = drawn_sets(source, target, 7)
    assert [len(chosen) for chosen in drawn] == [per_neuron] * 7  # the count one epoch's choice draws
    assert len(set(zip(source.tolist(), target.tolist()))) == len(source)
    for unit in range(7):
        fits = max(r for r in range(per_neuron + 1) if len(union_by_hand(kernels, r)[unit]) <= per_neuron)
        assert union_by_hand(kernels, fits)[unit] <= drawn[unit] <= union_by_hand(kernels, fits + 1)[unit]
    assert drawn != strongest_by_hand(kernels[-1], per_neuron)  # not just the last epoch's


def test_a_share_over_the_run_is_the_union_of_the_per_epoch_strongest_share():
    rng = np.random.default_rng(5)
    kernels = list(np.cumsum(rng.normal(size=(4, 30, 5)).astype(np.float32), axis=0))
    source, target = selected_over_run(kernels, EdgeSelection(STRONGEST_SHARE, share=0.1))
    drawn = set(zip(source.tolist(), target.tolist()))
    assert len(drawn) == 15  # ceil(0.1 * 150), as at one epoch

    def union(keep):
        chosen = set()
        for kernel in kernels:
            flat = np.argsort(-np.abs(kernel.T).ravel(), kind="stable")[:keep]  # output-major, ties to the lower
            chosen |= {(int(i % 30), int(i // 30)) for i in flat}
        return chosen

    fits = max(r for r in range(16) if len(union(r)) <= 15)
    assert union(fits) <= drawn <= union(fits + 1)
    assert list(target) == sorted(target.tolist())  # sorted by output, then input


def test_every_weight_or_one_epoch_is_drawn_as_before():
    kernels = [np.ones((10, 4), np.float32), np.full((10, 4), 2.0, np.float32)]
    source, _target = selected_over_run(kernels, EdgeSelection(ALL))
    assert len(source) == 40
    single = np.random.default_rng(6).normal(size=(12, 3)).astype(np.float32)
    over_one = selected_over_run([single], EdgeSelection(STRONGEST_PER_NEURON, per_neuron=2))
    at_epoch = selected_weights(single, EdgeSelection(STRONGEST_PER_NEURON, per_neuron=2))
    assert all(np.array_equal(a, b) for a, b in zip(over_one, at_epoch))


@pytest.mark.tf
def test_by_importance_over_the_run_each_epochs_most_important_connection_is_drawn(demo_bundle):
    from blender_cnn.core import importance
    from blender_cnn.core.connections import BY_IMPORTANCE

    count = len(demo_bundle.epochs)
    selection = EdgeSelection(STRONGEST_PER_NEURON, per_neuron=count, rank_by=BY_IMPORTANCE, importance_class=2)
    every_epoch = np.stack([demo_bundle.weights("dense1", epoch)["kernel"] for epoch in demo_bundle.epochs])
    source, target = selection.chosen_weights(demo_bundle, "dense1", -1, every_epoch)
    scores = [importance.edge_importance(demo_bundle, "dense1", index, 2) for index in range(count)]
    drawn = drawn_sets(source, target, every_epoch.shape[2])
    for unit, chosen in enumerate(drawn):
        assert union_by_hand(scores, 1)[unit] <= chosen <= union_by_hand(scores, count)[unit]
        assert len(chosen) == count


def test_labels_say_how_the_drawn_weights_were_chosen():
    per_neuron = EdgeSelection(STRONGEST_PER_NEURON, per_neuron=3)
    assert per_neuron.describe(epochs=9, epoch=8) == "strongest 3 per neuron over the run"
    at_epoch = EdgeSelection(STRONGEST_SHARE, share=0.05, chosen=AT_EPOCH)
    assert at_epoch.describe(epochs=9, epoch=8) == "strongest 5% at epoch 8"
    assert per_neuron.describe(epochs=1, epoch=0) == "strongest 3 per neuron"  # a run of one epoch
    assert EdgeSelection(ALL).describe(epochs=9) == "all"


def test_bad_selections_are_refused_with_the_reason():
    from blender_cnn.core.errors import BlenderCNNError

    with pytest.raises(BlenderCNNError, match="unknown mode 'SOME'"):
        EdgeSelection("SOME")
    with pytest.raises(BlenderCNNError, match="per_neuron must be at least 1"):
        EdgeSelection(STRONGEST_PER_NEURON, per_neuron=0)
    with pytest.raises(BlenderCNNError, match=r"share must be in \(0, 1\]"):
        EdgeSelection(STRONGEST_SHARE, share=1.5)
    with pytest.raises(BlenderCNNError, match="unknown choice 'LATER'"):
        EdgeSelection(chosen="LATER")


@pytest.mark.tf
@pytest.mark.bpy
def test_the_scene_draws_the_selected_weights_and_says_how_many(blender, demo_bundle):
    network = build(demo_bundle, edges=EdgeSelection(STRONGEST_PER_NEURON, per_neuron=3, chosen=AT_EPOCH))
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
    selections = {entry["selection"] for entry in network["blender_cnn_connections"]}
    assert selections == {f"strongest 3 per neuron at epoch {demo_bundle.epochs[-1]}"}


@pytest.mark.tf
@pytest.mark.bpy
def test_the_selected_connection_set_is_the_union_of_the_per_epoch_strongest(blender, demo_bundle):
    """As many per neuron as the run has epochs: every epoch's strongest incoming weight of every neuron is drawn,
    and nothing outside the union of the epochs' strongest that many; the labels say so."""
    from scene_readers import label_texts

    from blender_cnn.core.cells import layer_cells

    count = len(demo_bundle.epochs)
    network = build(demo_bundle, edges=EdgeSelection(STRONGEST_PER_NEURON, per_neuron=count))
    _points, curves = drawn_curves(network)
    starts = {layer.name: layer.start for layer in layer_cells(demo_bundle)}
    follows_training = False
    for layer in (layer for layer in demo_bundle.layers if layer.type == "Dense"):
        units = layer.output_shape[0]
        kernels = [demo_bundle.weights(layer.name, epoch)["kernel"] for epoch in demo_bundle.epochs]
        mine = (curves["target_cell"] >= starts[layer.name]) & (curves["target_cell"] < starts[layer.name] + units)
        drawn = drawn_sets(
            curves["source_cell"][mine] - starts[layer.inputs[0]],
            curves["target_cell"][mine] - starts[layer.name],
            units,
        )
        for unit in range(units):
            assert union_by_hand(kernels, 1)[unit] <= drawn[unit] <= union_by_hand(kernels, count)[unit]
            assert len(drawn[unit]) == count
        follows_training |= drawn != strongest_by_hand(kernels[-1], count)
    assert follows_training  # the weights that matter change over the run, and the drawn set shows it
    record = network["blender_cnn_connections"]
    assert {entry["selection"] for entry in record} == {f"strongest {count} per neuron over the run"}
    first = next(layer for layer in demo_bundle.layers if layer.type == "Dense")
    note = f"{first.output_shape[0] * count:,} of {demo_bundle.weights(first.name)['kernel'].size:,} connections"
    assert any(text.endswith(f"{note} (strongest {count} per neuron over the run)") for text in label_texts(network))


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


def bundled_by_hand(points):
    """The curves ``core/bundling.py`` bundles between the drawn curves' own ends (their neurons), as P points."""
    from blender_cnn.core.bundling import bundle_edges

    return bundle_edges(points[:, 0], points[:, -1], points.shape[1])


def straight_by_hand(points):
    t = np.linspace(0.0, 1.0, points.shape[1])[None, :, None]
    return points[:, :1] * (1 - t) + points[:, -1:] * t


@pytest.mark.tf
@pytest.mark.bpy
def test_strength_zero_draws_straight_lines_and_one_the_bundled_points(demo_network):
    set_input(demo_network, "Bundling Strength", 0.0)
    straight, _curves = drawn_curves(demo_network)
    np.testing.assert_allclose(straight, straight_by_hand(straight), atol=1e-4)

    set_input(demo_network, "Bundling Strength", 1.0)
    bundled, _curves = drawn_curves(demo_network)
    np.testing.assert_allclose(bundled, bundled_by_hand(bundled), atol=1e-3)
    assert np.abs(bundled - straight).max() > 1.0  # bundling really moves the curves
    assert np.array_equal(bundled[..., 0], straight[..., 0])  # and only sideways

    set_input(demo_network, "Bundling Strength", 0.5)
    halfway, _curves = drawn_curves(demo_network)
    np.testing.assert_allclose(halfway, 0.5 * (straight + bundled), atol=1e-4)


@pytest.mark.tf
@pytest.mark.bpy
def test_the_viewport_evaluates_fewer_points_per_segment_than_a_final_render(demo_network):
    from blender_cnn.nodes.groups import RENDER_CURVE_RESOLUTION, VIEWPORT_CURVE_RESOLUTION

    geometry = evaluated_geometry(demo_network)
    # A final render gets Blender's own 12 (renders stay as they were); the viewport a third of them.
    assert RENDER_CURVE_RESOLUTION == 12 and VIEWPORT_CURVE_RESOLUTION == 4
    assert set(read_attribute(geometry.curves, "resolution").tolist()) == {VIEWPORT_CURVE_RESOLUTION}


def ends_at_their_neurons(network, demo_bundle, points, curves):
    centres = cell_centre_table(network, demo_bundle)
    starts = np.array([centres[int(cell)] for cell in curves["source_cell"]])
    ends = np.array([centres[int(cell)] for cell in curves["target_cell"]])
    np.testing.assert_allclose(points[:, 0], starts, atol=1e-3)
    np.testing.assert_allclose(points[:, -1], ends, atol=1e-3)


@pytest.mark.tf
@pytest.mark.bpy
def test_after_a_change_of_neuron_scale_and_layer_spacing_the_bundles_end_at_their_neurons_scaled(
    demo_network, demo_bundle
):
    """Every bundled curve still starts and ends at its neurons and keeps its bundled shape, scaled: between two
    columns of neurons (dense -> dense) the curves stretch with the layers along x and with Neuron Scale across;
    every curve is what the bundling computes for its neurons where they now stand; strength still blends."""
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.scene.network import get_network_input

    before, curves = drawn_curves(demo_network)
    spacing = get_network_input(demo_network, "Layer Spacing")
    set_input(demo_network, "Neuron Scale", 4.0)  # from 2.5
    set_input(demo_network, "Layer Spacing", 1.5 * spacing)
    after, curves_after = drawn_curves(demo_network)
    assert np.array_equal(curves["source_cell"], curves_after["source_cell"])
    ends_at_their_neurons(demo_network, demo_bundle, after, curves_after)
    np.testing.assert_allclose(after, bundled_by_hand(after), atol=1e-3)

    dense = [layer for layer in demo_bundle.layers if layer.type == "Dense"]
    output = next(layer for layer in layer_cells(demo_bundle) if layer.name == dense[-1].name)
    pair = curves["target_cell"] >= output.start  # dense1 (32 neurons) -> output (10): two columns
    old, new = before[pair], after[pair]
    old_x, new_x = (points[:, [0, -1], 0].mean(axis=0) for points in (old, new))  # the two layers' x
    assert new_x[1] - new_x[0] == pytest.approx(1.5 * (old_x[1] - old_x[0]), rel=1e-5)
    expected = old.copy()
    expected[..., 0] = new_x[0] + (old[..., 0] - old_x[0]) * 1.5
    middle = old[:, [0, -1], 1:].reshape(-1, 2).mean(axis=0)  # both columns stand on this line
    expected[..., 1:] = middle + (old[..., 1:] - middle) * (4.0 / 2.5)
    np.testing.assert_allclose(new, expected, atol=1e-3)
    assert np.abs(new - straight_by_hand(new)).max() > 1.0  # still bundled

    set_input(demo_network, "Bundling Strength", 0.5)
    halfway, _curves = drawn_curves(demo_network)
    np.testing.assert_allclose(halfway, 0.5 * (straight_by_hand(after) + after), atol=1e-3)


@pytest.mark.tf
@pytest.mark.bpy
def test_bundles_follow_the_layout_when_the_network_turns_into_rows(demo_network, demo_bundle):
    """A short Row Length puts the dense layers into another row than the flatten before them: every curve still
    runs from its neurons to its neurons, and a pair that moved as one keeps its shape, moved."""
    from blender_cnn.core.cells import layer_cells

    before, curves = drawn_curves(demo_network)
    set_input(demo_network, "Row Length", 3)
    after, curves_after = drawn_curves(demo_network)
    ends_at_their_neurons(demo_network, demo_bundle, after, curves_after)
    assert np.abs(after[:, 0] - before[:, 0]).max() > 10.0  # the neurons did move
    output = next(layer for layer in layer_cells(demo_bundle) if layer.name == demo_bundle.layers[-1].name)
    pair = curves["target_cell"] >= output.start
    old, new = before[pair], after[pair]
    shift = new[:, 0, 1:] - old[:, 0, 1:]
    assert np.allclose(shift, shift[0], atol=1e-3) and np.allclose(new[:, -1, 1:] - old[:, -1, 1:], shift[0], atol=1e-3)
    np.testing.assert_allclose(new[..., 1:], old[..., 1:] + shift[0], atol=1e-3)  # moved sideways as one
    set_input(demo_network, "Bundling Strength", 0.0)
    straight, _curves = drawn_curves(demo_network)
    np.testing.assert_allclose(straight, straight_by_hand(after), atol=1e-3)


@pytest.mark.tf
@pytest.mark.bpy
def test_curves_stored_without_routes_are_drawn_straight_between_their_neurons(demo_network, demo_bundle):
    """As a network saved before bundles followed the layout: its curves hold no routes."""
    demo_network.data.attributes.remove(demo_network.data.attributes["bundle_route"])
    demo_network.update_tag()
    points, curves = drawn_curves(demo_network)
    ends_at_their_neurons(demo_network, demo_bundle, points, curves)
    np.testing.assert_allclose(points, straight_by_hand(points), atol=1e-4)


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

    from blender_cnn.core.cells import layer_cells
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
    assert record[0]["selection"] == "strongest 5% over the run"
    texts = [
        node.inputs["Text"].default_value
        for node in tree_nodes(network.modifiers["BlenderCNN"].node_group)
        if node.bl_idname == "GeometryNodeGroup" and node.node_tree.name.startswith("BCNN Layer Label")
    ]
    assert any(text.endswith("410 of 8,192 connections (strongest 5% over the run)") for text in texts), texts
    assert label_face_count(network) != labels_before  # the drawn label changed with its text
    # Chosen at the epoch shown instead: that epoch's strongest.
    assert blender.ops.bcnn.draw_connections(mode="STRONGEST_PER_NEURON", per_neuron=2, chosen="EPOCH") == {"FINISHED"}
    _points, curves = drawn_curves(network)
    first = dense[0]
    kernel = demo_bundle.weights(first.name)["kernel"]
    starts = {layer.name: layer.start for layer in layer_cells(demo_bundle)}
    mine = curves["target_cell"] < starts[first.name] + kernel.shape[1]
    drawn = drawn_sets(
        curves["source_cell"][mine] - starts[first.inputs[0]],
        curves["target_cell"][mine] - starts[first.name],
        kernel.shape[1],
    )
    assert drawn == strongest_by_hand(kernel, 2)
    assert (
        network["blender_cnn_connections"][0]["selection"]
        == f"strongest 2 per neuron at epoch {demo_bundle.epochs[-1]}"
    )


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
