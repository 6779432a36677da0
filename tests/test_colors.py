"""Colormaps, normalization and the legend, read back from the evaluated geometry."""

import numpy as np
import pytest
from scene_readers import drawn_cells, evaluated_geometry, map_range, read_attribute

from blender_cnn.core import colormaps
from blender_cnn.core.cells import activation_range

pytestmark = pytest.mark.bpy


def layer_ranges(bundle):
    return {layer.index: activation_range(bundle.array(layer.activations)) for layer in bundle.layers}


@pytest.mark.parametrize("colormap", colormaps.ACTIVATION_COLORMAPS)
def test_each_activation_colormap_colors_the_cells(designed_network, digits_design_bundle, colormap):
    from blender_cnn.scene.network import set_network_input

    set_network_input(designed_network, "Activation Colormap", colormap)
    _centres, cells = drawn_cells(designed_network)
    ranges = layer_ranges(digits_design_bundle)
    low = np.array([ranges[layer][0] for layer in cells["layer"]])
    high = np.array([ranges[layer][1] for layer in cells["layer"]])
    expected = colormaps.sample(colormap, (cells["activation"] - low) / (high - low))
    np.testing.assert_allclose(cells["cell_color"][:, :3], expected, atol=2e-3)


def test_normalizing_across_the_network_uses_one_range_for_all_layers(designed_network, digits_design_bundle):
    from blender_cnn.scene.network import set_network_input

    set_network_input(designed_network, "Normalize Across Network", True)
    _centres, cells = drawn_cells(designed_network)
    ranges = layer_ranges(digits_design_bundle).values()
    low, high = min(low for low, _ in ranges), max(high for _, high in ranges)
    expected = colormaps.sample(colormaps.ACTIVATION_COLORMAP, map_range(cells["activation"], low, high))
    np.testing.assert_allclose(cells["cell_color"][:, :3], expected, atol=2e-3)
    # The raw values stay on the geometry for materials and users to remap: the input layer's are its pixels.
    pixels = digits_design_bundle.activations("input", 0, 3)  # the network shows sample 3
    inputs = cells["layer"] == 0
    np.testing.assert_array_equal(cells["activation"][inputs], pixels[cells["row"][inputs], cells["col"][inputs], 0])


@pytest.mark.parametrize("colormap", colormaps.WEIGHT_COLORMAPS)
def test_edges_take_the_diverging_weight_colormap_centred_on_zero(designed_network, colormap):
    from blender_cnn.scene.network import set_network_input

    set_network_input(designed_network, "Weight Colormap", colormap)
    geometry = evaluated_geometry(designed_network)
    curves = geometry.curves
    weight, weight_max = read_attribute(curves, "weight"), read_attribute(curves, "weight_max")
    expected = colormaps.sample(colormap, (weight / weight_max + 1.0) / 2.0)
    np.testing.assert_allclose(read_attribute(curves, "edge_color")[:, :3], expected, atol=2e-3)


def test_normalized_across_the_network_the_legend_writes_its_range(designed_network):
    """Its two ends read the network's lowest and highest activation instead of "0" and "max" (each layer's)."""
    from blender_cnn.scene.drawn_texts import read_drawing
    from blender_cnn.scene.network import set_network_input

    def legend_texts():
        texts = [text for text in read_drawing(designed_network).texts if text.name == "the legend"]
        return sorted(texts, key=lambda text: -float(text.lines[..., 1].mean()))  # left to right: along -Y

    per_layer = legend_texts()
    set_network_input(designed_network, "Normalize Across Network", True)
    across = legend_texts()
    set_network_input(designed_network, "Normalize Across Network", False)
    assert len(per_layer) == len(across) == 3  # the two ends and the title
    widths = [[float(np.ptp(text.lines[..., 1])) for text in texts] for texts in (per_layer, across)]
    assert widths[0][0] != pytest.approx(widths[1][0]) and widths[0][2] != pytest.approx(widths[1][2])


def test_the_legend_shows_the_colormap_from_low_to_high_and_can_be_hidden(designed_network):
    from blender_cnn.scene.network import set_network_input

    set_network_input(designed_network, "Activation Colormap", "plasma")
    centres, legend = drawn_cells(designed_network, legend=True)
    steps = len(centres)
    assert steps >= 16
    # Left to right as the network is seen is along -Y.
    order = np.argsort(-centres[:, 1])
    expected = colormaps.sample("plasma", np.linspace(0.0, 1.0, steps))
    np.testing.assert_allclose(legend["cell_color"][order, :3], expected, atol=2e-3)

    set_network_input(designed_network, "Show Legend", False)
    centres, _legend = drawn_cells(designed_network, legend=True)
    assert len(centres) == 0
