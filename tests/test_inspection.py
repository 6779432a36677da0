"""Inspection of one cell: its numbers against a plain numpy recomputation from the bundle."""

import numpy as np
import pytest

from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.design import design_bundle
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.inspection import CONVOLUTION, DENSE, MAX_POOLING, VALUE, inspect_cell

# Strides and 'same' padding on odd sizes: windows hang over the top-left and bottom-right edges unevenly.
DESIGN = {
    "name": "inspected",
    "input_shape": [9, 9, 2],
    "class_names": ["a", "b", "c"],
    "layers": [
        {"type": "Conv2D", "name": "conv", "filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
         "activation": "relu", "inputs": ["input"]},
        {"type": "Conv2D", "name": "conv_valid", "filters": 3, "kernel_size": 2, "padding": "valid",
         "activation": "tanh", "inputs": ["conv"]},
        {"type": "MaxPooling2D", "name": "pool", "pool_size": 2, "strides": 2, "padding": "same",
         "inputs": ["conv_valid"]},
        {"type": "Flatten", "name": "flatten", "inputs": ["pool"]},
        {"type": "Dense", "name": "hidden", "units": 6, "activation": "relu", "inputs": ["flatten"]},
        {"type": "Dense", "name": "output", "units": 3, "activation": "softmax", "inputs": ["hidden"]},
    ],
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    inputs = np.random.default_rng(3).uniform(-1, 1, (2, 9, 9, 2)).astype(np.float32)
    path = design_bundle(DESIGN, tmp_path_factory.mktemp("inspect") / "inspected.bcnn.npz", seed=5, inputs=inputs)
    return load_bundle(path)


def same_padding(size, window, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2


def naive_conv_pixel(values, kernel, bias, row, col, channel, stride, pad):
    """Keras' convolution of one output pixel, written out as the textbook sum."""
    total = np.float64(bias[channel])
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            r, c = row * stride - pad + i, col * stride - pad + j
            if 0 <= r < values.shape[0] and 0 <= c < values.shape[1]:
                total += np.dot(values[r, c].astype(np.float64), kernel[i, j, :, channel].astype(np.float64))
    return total


@pytest.mark.parametrize("row, col", [(0, 0), (2, 3), (4, 4)])
def test_strided_same_padded_convolution_equals_the_textbook_sum(bundle, row, col):
    inputs, kernel, bias = bundle.activations("input", 0, 1), *bundle.weights("conv", 0).values()
    channel = 2
    inspection = inspect_cell(bundle, "conv", (row, col, channel), epoch=0, sample=1)
    pad = same_padding(9, 3, 2)
    expected = naive_conv_pixel(inputs, kernel, bias, row, col, channel, 2, pad)
    assert inspection.kind == CONVOLUTION
    assert len(inspection.terms) == 3 * 3 * 2
    np.testing.assert_allclose(inspection.total, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(inspection.value, max(expected, 0.0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(inspection.value, inspection.stored, rtol=1e-5, atol=1e-6)
    for term in inspection.terms:
        r, c, source_channel = term.source
        inside = 0 <= r < 9 and 0 <= c < 9
        assert term.padding == (not inside)
        assert term.value == (float(inputs[r, c, source_channel]) if inside else 0.0)
        assert term.weight == float(kernel[r - (row * 2 - pad), c - (col * 2 - pad), source_channel, channel])
    assert (row, col) != (0, 0) or any(term.padding for term in inspection.terms)
    assert inspection.bias == float(bias[channel])


def test_valid_convolution_with_tanh(bundle):
    inputs, kernel, bias = bundle.activations("conv", 0, 0), *bundle.weights("conv_valid", 0).values()
    inspection = inspect_cell(bundle, "conv_valid", (3, 1, 1), epoch=0, sample=0)
    expected = naive_conv_pixel(inputs, kernel, bias, 3, 1, 1, 1, 0)
    np.testing.assert_allclose(inspection.total, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(inspection.value, np.tanh(expected), rtol=1e-6, atol=1e-6)
    assert not any(term.padding for term in inspection.terms)
    assert "-> tanh ->" in inspection.equation()


def test_max_pooling_names_the_window_and_its_winner(bundle):
    values = bundle.activations("conv_valid", 0, 1)  # 4x4: 'same' pooling of 2 over 4 needs no padding
    inspection = inspect_cell(bundle, "pool", (1, 0, 2), epoch=0, sample=1)
    window = values[2:4, 0:2, 2]
    assert inspection.kind == MAX_POOLING
    assert [term.value for term in inspection.terms] == [float(v) for v in window.ravel()]
    assert inspection.value == float(window.max()) == inspection.stored
    winner = inspection.terms[inspection.winner]
    assert winner.value == float(window.max())
    assert values[winner.source] == window.max()


def test_dense_lists_the_strongest_contributions_and_sums_them_all(bundle):
    inputs = bundle.activations("hidden", 0, 0)
    kernel, bias = bundle.weights("output", 0)["kernel"], bundle.weights("output", 0)["bias"]
    inspection = inspect_cell(bundle, "output", 2, epoch=0, sample=0, top=4)
    products = inputs * kernel[:, 2]
    strongest = np.argsort(-np.abs(products), kind="stable")[:4]
    assert inspection.kind == DENSE
    assert [term.source[0] for term in inspection.terms] == list(strongest)
    assert inspection.hidden_terms == 2
    np.testing.assert_allclose(inspection.products_sum, products.sum(), rtol=1e-6, atol=1e-6)
    logits = inputs.astype(np.float64) @ kernel + bias
    np.testing.assert_allclose(inspection.total, logits[2], rtol=1e-6)
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(inspection.value, softmax[2], rtol=1e-6)
    np.testing.assert_allclose(inspection.value, inspection.stored, rtol=1e-5)
    assert "softmax" in inspection.text() and f"neuron {strongest[0]}" in inspection.text()


def test_a_layer_without_weights_or_window_shows_its_value(bundle):
    inspection = inspect_cell(bundle, "flatten", 5, epoch=0, sample=0)
    assert inspection.kind == VALUE
    assert inspection.value == float(bundle.activations("flatten", 0, 0)[5])


def test_a_custom_inputs_activations_are_inspected_instead_of_the_samples(bundle):
    from blender_cnn.core.forward import forward

    image = np.ones((9, 9, 2), dtype=np.float32)
    computed = {name: values[0] for name, values in forward(bundle, image, 0).items()}
    inspection = inspect_cell(bundle, "hidden", 1, epoch=0, sample="custom input", activations=computed)
    np.testing.assert_allclose(inspection.value, computed["hidden"][1], rtol=1e-5, atol=1e-6)
    assert "sample custom input" in inspection.text()


def test_a_cell_outside_the_layer_is_one_clear_error(bundle):
    with pytest.raises(BlenderCNNError, match=r"layer 'conv'.*output shape \(5, 5, 4\).*no cell \(5, 0, 0\)"):
        inspect_cell(bundle, "conv", (5, 0, 0), epoch=0)
