"""Inspecting a cell in the scene: through the operator at the 3D cursor, its annotations and its text."""

import numpy as np
import pytest

from test_panels import draw_panel


@pytest.fixture
def network(blender, demo_bundle):
    from blender_cnn.scene.network import build_network, set_network_input

    network = build_network(demo_bundle, sample=3)
    set_network_input(network, "Sample", 3.0)
    blender.context.view_layer.objects.active = network
    return network


def cell_centre(network, layer_index, channel, row, col):
    from blender_cnn.scene.focus import cell_centres

    centres, indices = cell_centres(network)
    return centres[np.flatnonzero((indices == (layer_index, channel, row, col)).all(axis=1))[0]]


def annotations(network):
    """Per annotation: its plate's centre (world space) and its text's face count, in annotation order."""
    from blender_cnn.scene.inspection import annotation_object

    mesh = annotation_object(network).data
    owner = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.attributes["annotation"].data.foreach_get("value", owner)
    material = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", material)
    matrix = np.array(network.matrix_world)
    plates, glyph_faces = [], []
    for index in np.unique(owner):
        plate = np.flatnonzero((owner == index) & (material == 1))[0]
        corners = np.array([mesh.vertices[v].co[:] for v in mesh.polygons[plate].vertices])
        plates.append(corners.mean(axis=0) @ matrix[:3, :3].T + matrix[:3, 3])
        glyph_faces.append(int(np.sum((owner == index) & (material == 0))))
    return np.array(plates), glyph_faces


def inspect_at(blender, location):
    blender.context.scene.cursor.location = tuple(float(v) for v in location)
    return blender.ops.bcnn.inspect_cell()


def test_inspecting_a_convolution_pixel_puts_its_inputs_on_the_window_cells(blender, network, demo_bundle):
    from blender_cnn.core.inspection import inspect_cell
    from blender_cnn.scene.focus import FOCUS_INPUTS
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY, TEXT_BLOCK
    from blender_cnn.scene.network import get_network_input

    conv2 = demo_bundle.layer("conv2")
    assert inspect_at(blender, cell_centre(network, conv2.index, 5, 3, 4)) == {"FINISHED"}
    assert [get_network_input(network, name) for name in FOCUS_INPUTS] == [conv2.index, 5, 3, 4]
    expected = inspect_cell(demo_bundle, "conv2", (3, 4, 5), epoch=demo_bundle.epochs[-1], sample=3)
    assert network[INSPECTION_TEXT_PROPERTY] == expected.text()
    assert blender.data.texts[TEXT_BLOCK].as_string().strip() == expected.text()
    plates, glyph_faces = annotations(network)
    pool1 = demo_bundle.layer("pool1")
    inside = [term for term in expected.terms if not term.padding]
    assert len(plates) == len(inside) + 1  # a number on each window cell, and the equation
    for plate, term in zip(plates, inside):
        row, col, channel = term.source
        assert np.linalg.norm(plate - cell_centre(network, pool1.index, channel, row, col)) < 0.1
    assert all(faces > 0 for faces in glyph_faces)
    # The equation sits above the inspected pixel's map, not on it.
    assert np.linalg.norm(plates[-1] - cell_centre(network, conv2.index, 5, 3, 4)) > 2.0


def test_inspecting_a_dense_neuron_highlights_it_and_labels_its_strongest_inputs(blender, network, demo_bundle):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.core.inspection import DENSE_TERMS_SHOWN
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY
    from blender_cnn.scene.network import get_network_input

    output = next(cells for cells in layer_cells(demo_bundle) if cells.name == "output")
    inspect_at(blender, cell_centre(network, output.layer_index, 0, 3, 0))
    assert get_network_input(network, "Highlight Neuron") == output.start + 3
    text = network[INSPECTION_TEXT_PROPERTY]
    assert text.startswith("output neuron 3 (Dense)") and "-> softmax ->" in text
    plates, _ = annotations(network)
    assert len(plates) == DENSE_TERMS_SHOWN + 1
    dense1 = demo_bundle.layer("dense1")
    first_unit = int(text.split("\n")[2].split()[1].rstrip(":"))  # "  neuron 11: 7.31x0.351"
    assert np.linalg.norm(plates[0] - cell_centre(network, dense1.index, 0, first_unit, 0)) < 0.1


def test_inspecting_max_pooling_and_a_custom_image(blender, network, demo_bundle):
    from blender_cnn.core.forward import forward
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY
    from blender_cnn.scene.network import show_input

    pool1 = demo_bundle.layer("pool1")
    inspect_at(blender, cell_centre(network, pool1.index, 2, 1, 1))
    assert "winner: row" in network[INSPECTION_TEXT_PROPERTY]
    assert len(annotations(network)[0]) == 4 + 1
    image = np.zeros(demo_bundle.input_shape, dtype=np.float32)
    image[4:12, 7:9] = 1.0  # a '1'
    show_input(network, image, label="my one")
    dense1 = demo_bundle.layer("dense1")
    inspect_at(blender, cell_centre(network, dense1.index, 0, 7, 0))
    text = network[INSPECTION_TEXT_PROPERTY]
    assert "sample my one" in text
    value = forward(demo_bundle, image, demo_bundle.epochs[-1])["dense1"][0, 7]
    assert text.endswith(f"{value:.4g}")


def test_the_panel_shows_the_text_and_copy_and_clear_work(blender, network, demo_bundle):
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY, annotation_object

    record = draw_panel(blender)
    assert "bcnn.inspect_cell" in record["operators"] and "bcnn.copy_inspection" not in record["operators"]
    inspect_at(blender, cell_centre(network, demo_bundle.layer("conv1").index, 0, 0, 0))
    record = draw_panel(blender)
    assert any(label.startswith("sum of 9 products") for label in record["labels"])
    assert {"bcnn.copy_inspection", "bcnn.clear_inspection"} <= set(record["operators"])
    window_manager = blender.context.window_manager
    window_manager.clipboard = "probe"
    has_clipboard = window_manager.clipboard == "probe"  # background Blender without a display has none
    assert blender.ops.bcnn.copy_inspection() == {"FINISHED"}
    assert not has_clipboard or window_manager.clipboard == network[INSPECTION_TEXT_PROPERTY]
    holder = annotation_object(network)
    assert holder.parent == network
    name = holder.name
    assert blender.ops.bcnn.clear_inspection() == {"FINISHED"}
    assert INSPECTION_TEXT_PROPERTY not in network and name not in blender.data.objects
