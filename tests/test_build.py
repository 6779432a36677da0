"""The built scene, read back from the evaluated geometry (after Geometry Nodes)."""

import numpy as np
import pytest
from scene_readers import drawn_cells, label_face_count, map_range

from blender_cnn.core import colormaps
from blender_cnn.core.cells import activation_range
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.nodes.builder import tree_nodes


def build(blender, bundle, **options):
    from blender_cnn.scene.network import build_network

    return build_network(bundle, **options)


@pytest.mark.tf
@pytest.mark.bpy
def test_every_activation_is_one_cell(blender, demo_bundle):
    network = build(blender, demo_bundle)
    _centres, cells = drawn_cells(network)
    for layer in demo_bundle.layers:
        expected = int(np.prod(layer.output_shape))
        assert int((cells["layer"] == layer.index).sum()) == expected, layer.name


@pytest.mark.tf
@pytest.mark.bpy
@pytest.mark.parametrize("epoch, sample", [(0, 3), (-1, 7)])
def test_cells_carry_the_activations_of_the_chosen_epoch_and_sample(blender, demo_bundle, epoch, sample):
    network = build(blender, demo_bundle, epoch=epoch, sample=sample)
    _centres, cells = drawn_cells(network)
    for layer in demo_bundle.layers:
        mine = cells["layer"] == layer.index
        expected = values_at_cells(layer, demo_bundle.activations(layer.name, epoch, sample), cells, mine)
        np.testing.assert_array_equal(cells["activation"][mine], expected, err_msg=layer.name)


def values_at_cells(layer, values, cells, mine):
    """``values`` (one layer's output) looked up at each cell's channel, row and column."""
    from blender_cnn.core.cells import display_shape

    if layer.is_spatial:
        return values[cells["row"][mine], cells["col"][mine], cells["channel"][mine]]
    return values.ravel()[cells["row"][mine] * display_shape(layer.output_shape)[1] + cells["col"][mine]]


@pytest.mark.tf
@pytest.mark.bpy
def test_cell_colors_are_the_colormap_of_the_normalized_activation(blender, demo_bundle):
    network = build(blender, demo_bundle, epoch=-1, sample=2)
    _centres, cells = drawn_cells(network)
    for layer in demo_bundle.layers:
        mine = cells["layer"] == layer.index
        low, high = activation_range(demo_bundle.array(layer.activations))
        expected = colormaps.sample(colormaps.ACTIVATION_COLORMAP, map_range(cells["activation"][mine], low, high))
        np.testing.assert_allclose(cells["cell_color"][mine][:, :3], expected, atol=2e-3, err_msg=layer.name)
    # A trained network's cells are not all one color.
    assert np.ptp(cells["cell_color"][:, :3], axis=0).max() > 0.3


@pytest.mark.tf
@pytest.mark.bpy
def test_drawn_parts_carry_no_attribute_that_only_placed_or_colored_the_cells(blender, demo_bundle):
    from blender_cnn.scene.drawn import DrawnInstances, evaluated_geometry

    network = build(blender, demo_bundle)
    geometry = evaluated_geometry(network)
    names = DrawnInstances(geometry, network.matrix_world).attribute_names()
    if geometry.mesh is not None:
        names |= set(geometry.mesh.attributes.keys())
    placing = {
        "map_rows",
        "map_cols",
        "channels",
        "is_neuron",
        "act_low",
        "act_high",
        "cell_pitch",
        "cell_scale",
        "cell_tilt",
        "importance_row",
        "importance",
        "importance_class",
    }
    assert not names & placing
    assert {"cell_color", "activation", "layer"} <= names  # what the materials, picking and tests read stays


@pytest.mark.tf
@pytest.mark.bpy
def test_layout_inputs_on_the_modifier_move_the_cells(blender, demo_bundle):
    from blender_cnn.scene.network import get_network_input, set_network_input

    network = build(blender, demo_bundle)
    before, cells = drawn_cells(network)
    spacing = get_network_input(network, "Layer Spacing")

    set_network_input(network, "Layer Spacing", spacing + 10.0)
    after, _ = drawn_cells(network)
    np.testing.assert_allclose(after[:, 0] - before[:, 0], cells["layer"] * 10.0, atol=1e-3)
    np.testing.assert_allclose(after[:, 1:], before[:, 1:], atol=1e-4)

    set_network_input(network, "Cell Size", 2.0)
    doubled, _ = drawn_cells(network)
    first_map = (cells["layer"] == 1) & (cells["channel"] == 0)
    width_before = np.ptp(after[first_map, 1])
    assert np.ptp(doubled[first_map, 1]) == pytest.approx(2 * width_before, rel=1e-4)


@pytest.mark.tf
@pytest.mark.bpy
def test_every_layer_and_class_has_a_label(blender, demo_bundle):
    network = build(blender, demo_bundle)
    assert label_face_count(network) > 0
    tree = network.modifiers["BlenderCNN"].node_group
    label_texts = {
        node.inputs["Text"].default_value
        for node in tree_nodes(tree)
        if node.bl_idname == "GeometryNodeGroup" and "Text" in node.inputs
    }
    for layer in demo_bundle.layers:
        assert any(text.startswith(layer.name + "\n") for text in label_texts), layer.name
    assert set(demo_bundle.class_names) <= label_texts


@pytest.mark.tf
@pytest.mark.bpy
def test_rebuilding_reuses_the_node_groups(blender, demo_bundle):
    build(blender, demo_bundle)
    groups_after_first = {group.name for group in blender.data.node_groups if not group.name.startswith("BCNN Network")}
    build(blender, demo_bundle)
    groups_after_second = {
        group.name for group in blender.data.node_groups if not group.name.startswith("BCNN Network")
    }
    assert groups_after_first == groups_after_second


def datablock_counts(bpy):
    data = bpy.data
    return {
        kind: len(getattr(data, kind))
        for kind in ("objects", "meshes", "hair_curves", "node_groups", "collections", "materials")
    }


@pytest.mark.bpy
def test_a_bad_bundle_is_refused_and_leaves_the_file_as_it_was(blender, tmp_path):
    broken = tmp_path / "broken.bcnn.npz"
    np.savez(broken, something=np.zeros(3, dtype=np.float32))
    before = datablock_counts(blender)
    with pytest.raises(BlenderCNNError) as error:
        build(blender, str(broken))
    assert "broken.bcnn.npz" in str(error.value) and "manifest" in str(error.value)
    assert datablock_counts(blender) == before


@pytest.mark.tf
@pytest.mark.bpy
def test_a_failure_during_the_build_removes_what_it_made(blender, demo_bundle, monkeypatch):
    from blender_cnn.scene import network as network_module

    def failing_tree(*_args, **_kwargs):
        raise RuntimeError("node tree could not be built")

    monkeypatch.setattr(network_module, "build_network_tree", failing_tree)
    before = datablock_counts(blender)
    with pytest.raises(RuntimeError, match="node tree could not be built"):
        build(blender, demo_bundle)
    assert datablock_counts(blender) == before


@pytest.mark.tf
@pytest.mark.bpy
def test_the_import_operator_builds_the_network_and_reports_bad_files(blender, demo_bundle_path, tmp_path):
    assert blender.ops.bcnn.import_bundle(filepath=str(demo_bundle_path)) == {"FINISHED"}
    network = blender.context.active_object
    assert network.name == "digits_cnn"
    assert blender.context.scene.camera is not None

    not_a_bundle = tmp_path / "notes.bcnn.npz"
    not_a_bundle.write_text("hello")
    objects_before = len(blender.data.objects)
    with pytest.raises(RuntimeError, match="notes.bcnn.npz: is not a network bundle"):
        blender.ops.bcnn.import_bundle(filepath=str(not_a_bundle))
    assert len(blender.data.objects) == objects_before


@pytest.mark.bpy
def test_an_operator_reports_a_user_error_as_one_line_and_cancels(blender, tmp_path):
    """``reports_user_errors``: the BlenderCNNError's text, reported once as an ERROR, and CANCELLED."""
    from types import SimpleNamespace

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.ui.operators import BCNN_OT_import_bundle

    not_a_bundle = tmp_path / "notes.bcnn.npz"
    not_a_bundle.write_text("hello")
    with pytest.raises(BlenderCNNError) as raised:
        load_bundle(str(not_a_bundle))
    reports = []
    operator = SimpleNamespace(
        filepath=str(not_a_bundle),
        epoch=-1,
        sample=0,
        frame_camera=True,
        every_layer=False,
        report=lambda kind, text: reports.append((kind, text)),
    )
    objects_before = len(blender.data.objects)

    assert BCNN_OT_import_bundle.execute(operator, blender.context) == {"CANCELLED"}
    assert reports == [({"ERROR"}, str(raised.value))]
    assert "\n" not in reports[0][1] and "notes.bcnn.npz: is not a network bundle" in reports[0][1]
    assert len(blender.data.objects) == objects_before


@pytest.mark.tf
@pytest.mark.bpy
def test_a_new_input_runs_through_the_weights_and_shows_its_activations(blender, demo_bundle):
    from blender_cnn.scene.network import show_input

    network = build(blender, demo_bundle, epoch=-1, sample=0)
    new_input = demo_bundle.array(demo_bundle.manifest["samples"]["inputs"])[5]
    show_input(network, new_input, epoch=0, label="sample 5")
    _centres, cells = drawn_cells(network)
    for layer in demo_bundle.layers:
        mine = cells["layer"] == layer.index
        expected = values_at_cells(layer, demo_bundle.activations(layer.name, 0, 5), cells, mine)
        np.testing.assert_allclose(cells["activation"][mine], expected, rtol=1e-4, atol=1e-5, err_msg=layer.name)
    assert network["blender_cnn_sample"] == "sample 5" and network["blender_cnn_epoch"] == 0


@pytest.mark.tf
@pytest.mark.bpy
def test_an_input_of_the_wrong_shape_is_refused_and_changes_nothing(blender, demo_bundle):
    from blender_cnn.scene.network import show_input

    network = build(blender, demo_bundle, sample=1)
    _centres, before = drawn_cells(network)
    with pytest.raises(BlenderCNNError, match="shape"):
        show_input(network, np.zeros((8, 8, 1), dtype=np.float32))
    _centres, after = drawn_cells(network)
    np.testing.assert_array_equal(after["activation"], before["activation"])


@pytest.mark.tf
@pytest.mark.bpy
def test_a_layer_the_addon_does_not_understand_is_shown_with_its_outputs(blender, demo_bundle, tmp_path):
    import json

    from blender_cnn.core.bundle import MANIFEST_KEY, load_bundle, write_bundle

    with np.load(demo_bundle.path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files if key != MANIFEST_KEY}
        manifest = json.loads(archive[MANIFEST_KEY].tobytes().decode("utf-8"))
    mystery = next(layer for layer in manifest["layers"] if layer["name"] == "pool1")
    mystery["type"] = "MysteryPooling"
    path = write_bundle(tmp_path / "mystery.bcnn.npz", manifest, arrays)

    network = build(blender, load_bundle(path))
    _centres, cells = drawn_cells(network)
    assert int((cells["layer"] == demo_bundle.layer("pool1").index).sum()) == 8 * 8 * 8
    tree = network.modifiers["BlenderCNN"].node_group
    texts = [
        node.inputs["Text"].default_value
        for node in tree_nodes(tree)
        if node.bl_idname == "GeometryNodeGroup" and "Text" in node.inputs
    ]
    assert "pool1\nMysteryPooling 8x8x8\n(outputs only)" in texts
    assert not any("conv1" in text and "outputs only" in text for text in texts)


@pytest.mark.tf
@pytest.mark.bpy
def test_an_image_file_runs_through_the_network_without_tensorflow(blender, demo_bundle, tmp_path):
    from blender_cnn.core.forward import forward

    network = build(blender, demo_bundle, sample=0)
    drawing = np.ones((24, 24, 4), dtype=np.float32)
    drawing[3:21, 10:14, :3] = 0.0  # a dark bar on white paper, like a pen-drawn "1"
    path = tmp_path / "my one.png"
    image = blender.data.images.new("drawing", 24, 24, alpha=True)
    image.pixels.foreach_set(np.ascontiguousarray(drawing[::-1]).ravel())
    image.filepath_raw, image.file_format = str(path), "PNG"
    image.save()
    blender.data.images.remove(image)

    blender.context.view_layer.objects.active = network
    assert blender.ops.bcnn.show_image(filepath=str(path), epoch=0, invert=True) == {"FINISHED"}
    _centres, cells = drawn_cells(network)
    input_layer = demo_bundle.layers[0]
    shown_input = cells["activation"][cells["layer"] == 0].reshape(16, 16)
    assert shown_input[8, 8] == pytest.approx(1.0, abs=1e-3) and shown_input[8, 0] == pytest.approx(0.0, abs=1e-3)
    expected = forward(demo_bundle, shown_input[..., np.newaxis], epoch=0)
    for layer in demo_bundle.layers[1:]:
        mine = cells["layer"] == layer.index
        np.testing.assert_allclose(
            cells["activation"][mine],
            values_at_cells(layer, expected[layer.name][0], cells, mine),
            rtol=1e-5,
            atol=1e-6,
            err_msg=layer.name,
        )
    assert network["blender_cnn_sample"] == "my one.png" and input_layer.type == "InputLayer"

    with pytest.raises(RuntimeError, match="nothing.png: no such image file"):
        blender.ops.bcnn.show_image(filepath=str(tmp_path / "nothing.png"))
