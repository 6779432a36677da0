"""Inspecting a cell in the scene: through the operator at the 3D cursor, its annotations and its text."""

import numpy as np
import pytest
from scene_readers import annotations, cell_centre
from ui_recorder import draw_network_panel as draw_panel
from ui_recorder import inspect_at

pytestmark = [pytest.mark.tf, pytest.mark.bpy]


def test_inspecting_a_convolution_pixel_puts_its_inputs_on_the_window_cells(
    blender, inspected_demo_network, demo_bundle
):
    from blender_cnn.core.inspection import inspect_cell
    from blender_cnn.scene.focus import FOCUS_INPUTS
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY, TEXT_BLOCK
    from blender_cnn.scene.network import get_network_input

    conv2 = demo_bundle.layer("conv2")
    assert inspect_at(blender, cell_centre(inspected_demo_network, conv2.index, 5, 3, 4)) == {"FINISHED"}
    assert [get_network_input(inspected_demo_network, name) for name in FOCUS_INPUTS] == [conv2.index, 5, 3, 4]
    expected = inspect_cell(demo_bundle, "conv2", (3, 4, 5), epoch=demo_bundle.epochs[-1], sample=3)
    assert inspected_demo_network[INSPECTION_TEXT_PROPERTY] == expected.text()
    assert blender.data.texts[TEXT_BLOCK].as_string().strip() == expected.text()
    plates, glyphs = annotations(inspected_demo_network)
    pool1 = demo_bundle.layer("pool1")
    inside = [term for term in expected.terms if not term.padding]
    assert len(plates) == len(inside) + 1  # a number on each window cell, and the equation
    for plate, term in zip(plates, inside):
        row, col, channel = term.source
        assert np.linalg.norm(plate - cell_centre(inspected_demo_network, pool1.index, channel, row, col)) < 0.1
    assert all(faces > 0 for faces in glyphs)
    # The equation sits above the inspected pixel's map, not on it.
    assert np.linalg.norm(plates[-1] - cell_centre(inspected_demo_network, conv2.index, 5, 3, 4)) > 2.0


def test_inspecting_a_dense_neuron_highlights_it_and_labels_its_strongest_inputs(
    blender, inspected_demo_network, demo_bundle
):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.core.inspection import DENSE_TERMS_SHOWN
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY
    from blender_cnn.scene.network import get_network_input

    output = next(cells for cells in layer_cells(demo_bundle) if cells.name == "output")
    inspect_at(blender, cell_centre(inspected_demo_network, output.layer_index, 0, 3, 0))
    assert get_network_input(inspected_demo_network, "Highlight Neuron") == output.start + 3
    text = inspected_demo_network[INSPECTION_TEXT_PROPERTY]
    assert text.startswith("output neuron 3 (Dense)") and "-> softmax ->" in text
    plates, _ = annotations(inspected_demo_network)
    assert len(plates) == DENSE_TERMS_SHOWN + 1
    dense1 = demo_bundle.layer("dense1")
    first_unit = int(text.split("\n")[2].split()[1].rstrip(":"))  # "  neuron 11: 7.31x0.351"
    assert np.linalg.norm(plates[0] - cell_centre(inspected_demo_network, dense1.index, 0, first_unit, 0)) < 0.1


def test_inspecting_max_pooling_and_a_custom_image(blender, inspected_demo_network, demo_bundle):
    from blender_cnn.core.forward import forward
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY
    from blender_cnn.scene.network import show_input

    pool1 = demo_bundle.layer("pool1")
    inspect_at(blender, cell_centre(inspected_demo_network, pool1.index, 2, 1, 1))
    assert "winner: row" in inspected_demo_network[INSPECTION_TEXT_PROPERTY]
    assert len(annotations(inspected_demo_network)[0]) == 4 + 1
    image = np.zeros(demo_bundle.input_shape, dtype=np.float32)
    image[4:12, 7:9] = 1.0  # a '1'
    show_input(inspected_demo_network, image, label="my one")
    dense1 = demo_bundle.layer("dense1")
    inspect_at(blender, cell_centre(inspected_demo_network, dense1.index, 0, 7, 0))
    text = inspected_demo_network[INSPECTION_TEXT_PROPERTY]
    assert "sample my one" in text
    value = forward(demo_bundle, image, demo_bundle.epochs[-1])["dense1"][0, 7]
    assert text.endswith(f"{value:.4g}")


def test_the_panel_shows_the_text_and_copy_and_clear_work(blender, inspected_demo_network, demo_bundle):
    from blender_cnn.scene.inspection import INSPECTION_TEXT_PROPERTY, inspection_data

    record = draw_panel(blender)
    assert "bcnn.inspect_cell" in record["operators"] and "bcnn.copy_inspection" not in record["operators"]
    inspect_at(blender, cell_centre(inspected_demo_network, demo_bundle.layer("conv1").index, 0, 0, 0))
    record = draw_panel(blender)
    assert any(label.startswith("sum of 9 products") for label in record["labels"])
    assert {"bcnn.copy_inspection", "bcnn.clear_inspection"} <= set(record["operators"])
    window_manager = blender.context.window_manager
    window_manager.clipboard = "probe"
    has_clipboard = window_manager.clipboard == "probe"  # background Blender without a display has none
    assert blender.ops.bcnn.copy_inspection() == {"FINISHED"}
    assert not has_clipboard or window_manager.clipboard == inspected_demo_network[INSPECTION_TEXT_PROPERTY]
    holder = inspection_data(inspected_demo_network)
    assert holder is not None and len(annotations(inspected_demo_network)[0]) == 4 + 1  # a corner pixel's window
    name = holder.name
    assert blender.ops.bcnn.clear_inspection() == {"FINISHED"}
    assert INSPECTION_TEXT_PROPERTY not in inspected_demo_network and name not in blender.data.objects
    assert not len(annotations(inspected_demo_network)[0])


def test_inspected_numbers_follow_the_epoch_and_sample_shown(blender, inspected_demo_network, demo_bundle):
    from blender_cnn.core.inspection import inspect_cell
    from blender_cnn.nodes.annotations import ANNOTATION_INSPECT_CELL, ANNOTATION_INSPECT_EQUATION
    from blender_cnn.scene.annotations import drawn_texts
    from blender_cnn.scene.network import set_network_input

    conv2 = demo_bundle.layer("conv2")
    inspect_at(blender, cell_centre(inspected_demo_network, conv2.index, 5, 3, 4))
    first, last = demo_bundle.epochs[0], demo_bundle.epochs[-1]

    def expected(epoch, sample):
        inspection = inspect_cell(demo_bundle, "conv2", (3, 4, 5), epoch=epoch, sample=sample)
        inside = [term for term in inspection.terms if not term.padding]
        cells = np.array([(term.value, term.weight, term.product) for term in inside])
        return cells, np.array([inspection.products_sum, inspection.bias, inspection.total, inspection.value])

    def drawn():
        texts = drawn_texts(inspected_demo_network)
        cells = [
            text.numbers[:3] for text in sorted(texts, key=lambda t: t.item) if text.kind == ANNOTATION_INSPECT_CELL
        ]
        (equation,) = [text.numbers for text in texts if text.kind == ANNOTATION_INSPECT_EQUATION]
        return np.array(cells), np.array(equation)

    for epoch, sample in ((last, 3), (first, 3), (last, 2)):
        set_network_input(inspected_demo_network, "Epoch", float(epoch))
        set_network_input(inspected_demo_network, "Sample", float(sample))
        for got, want in zip(drawn(), expected(epoch, sample)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Between two epochs every number is the blend of theirs, as the cells' colors are.
    second = demo_bundle.epochs[1]
    set_network_input(inspected_demo_network, "Epoch", (first + second) / 2)
    halfway = [(a + b) / 2 for a, b in zip(expected(first, 2), expected(second, 2))]
    for got, want in zip(drawn(), halfway):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
