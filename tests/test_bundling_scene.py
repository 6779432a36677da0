"""The scene draws a pruned layer's rails as the numpy bundling does, from wherever its neurons stand.

The digits design (random weights, no TensorFlow) with its wide layers pruned to their strongest few weights per
neuron: flatten 256 -> dense 32 and dense 32 -> output 10 become pruned pairs, bundled on rails.
"""

import numpy as np
import pytest
from scene_readers import evaluated_geometry, read_attribute

from blender_cnn.core.bundling import RAILS, bundle_edges
from blender_cnn.core.connections import STRONGEST_PER_NEURON, EdgeSelection

pytestmark = pytest.mark.bpy


@pytest.fixture
def pruned_network(blender, digits_design_bundle):
    from blender_cnn.scene.network import build_network

    return build_network(digits_design_bundle, sample=3, edges=EdgeSelection(STRONGEST_PER_NEURON, per_neuron=4))


def drawn(network, **inputs):
    """(points (curves, P, 3), target cell per curve) of the evaluated connection curves after setting ``inputs``."""
    from blender_cnn.scene.network import set_network_input

    for name, value in inputs.items():
        set_network_input(network, name, value)
    geometry = evaluated_geometry(network)  # owns the curves read below
    curves = geometry.curves
    points = read_attribute(curves, "position").reshape(len(curves.curves), -1, 3)
    return points, read_attribute(curves, "target_cell")


def test_the_scene_draws_a_pruned_layers_rails_as_the_bundling_computes_them(pruned_network):
    bundled, target_cell = drawn(pruned_network, **{"Bundling Strength": 1.0})
    np.testing.assert_allclose(bundled, bundle_edges(bundled[:, 0], bundled[:, -1], bundled.shape[1]), atol=1e-3)
    # Flatten -> dense 32 runs on rails: in the middle of the way, one strand per cluster of the 32 neurons.
    first = target_cell < target_cell.max() - 9
    middle = np.round(bundled[first, bundled.shape[1] // 2, 1:], 3)
    assert len(np.unique(middle, axis=0)) == RAILS
    straight, _ = drawn(pruned_network, **{"Bundling Strength": 0.0})
    halfway, _ = drawn(pruned_network, **{"Bundling Strength": 0.5})
    np.testing.assert_allclose(halfway, 0.5 * (straight + bundled), atol=1e-3)


def test_rails_follow_neuron_scale_and_layer_spacing(pruned_network):
    from blender_cnn.scene.network import get_network_input

    before, _ = drawn(pruned_network)
    spacing = get_network_input(pruned_network, "Layer Spacing")
    after, _ = drawn(pruned_network, **{"Neuron Scale": 4.0, "Layer Spacing": 1.5 * spacing})
    assert np.abs(after[:, -1] - before[:, -1]).max() > 1.0  # the neurons moved
    np.testing.assert_allclose(after, bundle_edges(after[:, 0], after[:, -1], after.shape[1]), atol=1e-3)


def test_the_demos_fully_drawn_flatten_layer_runs_on_rails_not_two_strands(blender, digits_design_bundle):
    """Every weight of flatten 256 -> dense 32 drawn (the default selection): mid-span its curves run as RAILS
    strands, one per band of the 32 neurons, as the numpy bundling computes them (before rails: two)."""
    from blender_cnn.scene.network import build_network

    network = build_network(digits_design_bundle, sample=3)
    bundled, target_cell = drawn(network, **{"Bundling Strength": 1.0})
    np.testing.assert_allclose(bundled, bundle_edges(bundled[:, 0], bundled[:, -1], bundled.shape[1]), atol=1e-3)
    flatten = target_cell < target_cell.max() - 9  # into dense 32, not into the output's 10
    assert flatten.sum() == 256 * 32
    middle = np.round(bundled[flatten, bundled.shape[1] // 2, 1:], 3)
    places, place_of = np.unique(middle, axis=0, return_inverse=True)
    assert len(places) == RAILS
    assert np.bincount(place_of.ravel()).tolist() == [256 * 8] * RAILS
