"""Inspection of one cell: its numbers against a plain numpy recomputation from the bundle."""

import numpy as np
import pytest
from bundle_files import as_if_trained

from blender_cnn.core import inspection_record as kinds  # the kinds of Inspection
from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.design import design_bundle
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.inspection import inspect_cell

# Strides and 'same' padding on odd sizes: windows hang over the top-left and bottom-right edges unevenly.
DESIGN = {
    "name": "inspected",
    "input_shape": [9, 9, 2],
    "class_names": ["a", "b", "c"],
    "layers": [
        {
            "type": "Conv2D",
            "name": "conv",
            "filters": 4,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "activation": "relu",
            "inputs": ["input"],
        },
        {
            "type": "Conv2D",
            "name": "conv_valid",
            "filters": 3,
            "kernel_size": 2,
            "padding": "valid",
            "activation": "tanh",
            "inputs": ["conv"],
        },
        {
            "type": "MaxPooling2D",
            "name": "pool",
            "pool_size": 2,
            "strides": 2,
            "padding": "same",
            "inputs": ["conv_valid"],
        },
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
    assert inspection.kind == kinds.CONVOLUTION
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
    assert inspection.kind == kinds.MAX_POOLING
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
    assert inspection.kind == kinds.DENSE
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
    assert inspection.kind == kinds.VALUE
    assert inspection.value == float(bundle.activations("flatten", 0, 0)[5])


def hidden_by_hand(bundle, image):
    """DESIGN's "hidden" layer for one image, each layer written out with the textbook sums above."""

    def conv(values, name, stride, pad, activation):
        kernel, bias = bundle.weights(name, 0)["kernel"], bundle.weights(name, 0)["bias"]
        size = (values.shape[0] + 2 * pad - kernel.shape[0]) // stride + 1
        return activation(
            np.array(
                [
                    [
                        [
                            naive_conv_pixel(values, kernel, bias, row, col, channel, stride, pad)
                            for channel in range(kernel.shape[3])
                        ]
                        for col in range(size)
                    ]
                    for row in range(size)
                ]
            )
        )

    convolved = conv(image, "conv", 2, same_padding(9, 3, 2), lambda v: np.maximum(v, 0.0))  # 5x5x4
    valid = conv(convolved, "conv_valid", 1, 0, np.tanh)  # 4x4x3
    pooled = valid.reshape(2, 2, 2, 2, 3).max(axis=(1, 3))  # 2x2 windows, stride 2: no padding on 4x4
    weights = bundle.weights("hidden", 0)
    return np.maximum(pooled.ravel() @ weights["kernel"].astype(np.float64) + weights["bias"], 0.0)


def test_a_custom_inputs_activations_are_inspected_instead_of_the_samples(bundle):
    from blender_cnn.core.forward import forward

    image = np.ones((9, 9, 2), dtype=np.float32)
    expected = hidden_by_hand(bundle, image)
    stored = bundle.activations("hidden", 0, 0)
    unit = int(np.argmax(np.abs(expected - stored)))  # where the custom input and sample 0 differ most
    assert abs(expected[unit] - stored[unit]) > 1e-3
    computed = {name: values[0] for name, values in forward(bundle, image, 0).items()}
    inspection = inspect_cell(bundle, "hidden", unit, epoch=0, sample="custom input", activations=computed)
    np.testing.assert_allclose(inspection.value, expected[unit], rtol=1e-5, atol=1e-6)
    assert "sample custom input" in inspection.text()


def test_a_cell_outside_the_layer_is_one_clear_error(bundle):
    with pytest.raises(BlenderCNNError, match=r"layer 'conv'.*output shape \(5, 5, 4\).*no cell \(5, 0, 0\)"):
        inspect_cell(bundle, "conv", (5, 0, 0), epoch=0)


# ---------------------------------------------------------------- the texts the scene writes


@pytest.mark.parametrize(
    "layer, position", [("conv", (2, 3, 1)), ("conv_valid", (0, 0, 2)), ("pool", (1, 1, 0)), ("output", (1,))]
)
def test_the_scene_s_equation_is_the_panel_s_words_with_any_epoch_s_numbers(bundle, layer, position):
    from blender_cnn.core.inspection_annotations import ABOVE_MAP, ON_CELL, RIGHT_OF_NEURON, texts_of

    inspection = inspect_cell(bundle, layer, position, epoch=0, sample=1)
    *cells, equation = texts_of(inspection)
    header, words = equation.text(epoch=0.0, sample=1).split("\n")
    assert words == inspection.equation()
    assert header == f"{inspection.where()}, epoch 0.0, sample 1"
    assert equation.place == (ABOVE_MAP if len(position) == 3 else RIGHT_OF_NEURON)
    labelled = [term for term in inspection.terms if not term.padding]
    assert [(text.layer, text.position) for text in cells] == [(inspection.source_layer, t.source) for t in labelled]
    assert all(text.place == ON_CELL for text in cells)
    if inspection.kind == kinds.CONVOLUTION:
        term = labelled[0]
        assert cells[0].text() == f"{term.value:.2f}\n×{term.weight:.2f}\n={term.product:.2f}"


def test_another_sample_s_numbers_are_read_from_the_same_inputs(bundle):
    from blender_cnn.core.inspection_annotations import EVERY_TERM, annotation_timeline, numbers_like

    reference = inspect_cell(bundle, "output", 2, epoch=0, sample=0, top=4)
    other = inspect_cell(bundle, "output", 2, epoch=0, sample=1, top=EVERY_TERM)
    *cells, equation = numbers_like(reference, other)
    products = bundle.activations("hidden", 0, 1) * bundle.weights("output", 0)["kernel"][:, 2]
    # The same four inputs as at sample 0, with sample 1's products; the equation sums all six.
    np.testing.assert_allclose([c[0] for c in cells], products[[t.source[0] for t in reference.terms]], rtol=1e-6)
    np.testing.assert_allclose(equation[0], products.sum(), rtol=1e-5, atol=1e-6)
    timeline = annotation_timeline(bundle, reference, {0: 0, 1: 1})
    assert timeline.numbers.shape == (1, 2, len(cells) + 1, 4) and timeline.slots == (0, 1)
    np.testing.assert_allclose(timeline.numbers[0, 1, :-1, 0], [c[0] for c in cells], rtol=1e-6)
    np.testing.assert_allclose(timeline.numbers[0, 0, -1, : len(equation)], reference.equation_template()[1], rtol=1e-6)


# ---------------------------------------------------------------- the layers of published graphs
# A tiny functional model with the layer kinds of ResNet, MobileNetV2, DenseNet, EfficientNet and Inception,
# extracted by the real extractor: every expectation is computed here from the weights with textbook numpy,
# and checked against the activations TensorFlow computed, which the bundle stores.

GRAPH_INPUT = (8, 8, 3)


def graph_model(keras):
    L = keras.layers
    inputs = keras.Input(GRAPH_INPUT, name="input")
    stem = L.Conv2D(6, 3, padding="same", use_bias=False, name="stem")(inputs)
    relu6 = L.ReLU(6.0, name="relu6")(L.BatchNormalization(name="norm")(stem))
    depthwise = L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same", name="depthwise")(relu6)
    swish = L.Activation("swish", name="swish")(L.BatchNormalization(scale=False, name="dw_norm")(depthwise))
    separable = L.SeparableConv2D(5, 3, padding="same", depth_multiplier=2, activation="relu", name="separable")(swish)
    squeeze = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(separable)
    gate = L.Conv2D(5, 1, activation="sigmoid", name="gate")(squeeze)
    excite = L.Multiply(name="excite")([separable, gate])  # broadcasts the (1, 1, 5) gate, as EfficientNet's
    added = L.Add(name="add")([excite, L.Conv2D(5, 1, strides=2, name="shortcut")(relu6)])
    joined = L.Concatenate(axis=3, name="concat")([L.Activation("relu", name="relu")(added), swish])
    sigmoid = L.Activation("sigmoid", name="sigmoid")(
        L.Conv2DTranspose(3, 4, strides=2, padding="same", name="up")(joined)
    )
    normed = L.LayerNormalization(name="layer_norm")(joined)
    up_valid = L.Conv2DTranspose(2, 3, strides=2, padding="valid", activation="tanh", name="up_valid")(normed)
    leaky = L.LeakyReLU(negative_slope=0.2, name="leaky")(up_valid)
    features = L.Concatenate(name="features")(
        [L.GlobalMaxPooling2D(name="global_max")(sigmoid), L.GlobalAveragePooling2D(name="global_mean")(leaky)]
    )
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="output")(features))


def extracted(keras, model, run_dir, samples=2, seed=0, noise=0.5, gamma=(2.0, 5.0)):
    """``model`` as one untrained checkpoint with random weights (BatchNormalization statistics too), extracted.

    ``noise`` is added to every weight; ``gamma`` is the range of BatchNormalization's scales (large by
    default, so that ReLU6 clips at 6).
    """
    from blender_cnn.extract.keras_bundle import extract

    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "float" not in str(variable.dtype):  # Normalization's sample count
            continue
        variable.assign(as_if_trained(variable, rng, noise, gamma).astype(np.float32))
    model.save(run_dir / "epoch_000.keras")
    np.savez(
        run_dir / "samples.npz",
        inputs=rng.uniform(-1, 1, (samples, *model.input_shape[1:])).astype(np.float32),
        labels=np.arange(samples, dtype=np.int32) % model.output_shape[-1],
    )
    return load_bundle(extract(run_dir, run_dir / "graph.bcnn.npz", log=lambda _message: None, importance=False))


@pytest.fixture(scope="module")
def graph(keras, tmp_path_factory):
    return extracted(keras, graph_model(keras), tmp_path_factory.mktemp("graph"))


def graph_values(graph, layer, sample=1):
    return graph.activations(layer, 0, sample).astype(np.float64)


def graph_weights(graph, layer):
    return {name: values.astype(np.float64) for name, values in graph.weights(layer, 0).items()}


def tf_padded(values, window, stride, padding):
    """``values`` (H, W, C) zero-padded as TensorFlow pads a window: 'same' puts the odd pixel after."""
    if padding == "valid":
        return values
    pads = []
    for size in values.shape[:2]:
        total = max((-(-size // stride) - 1) * stride + window - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(values, (*pads, (0, 0)))


def textbook_depthwise(values, kernel, stride, padding):
    """(H', W', C*M): output channel c*M + m is input channel c's window times kernel[..., c, m]."""
    padded = tf_padded(values, kernel.shape[0], stride, padding)
    rows = (padded.shape[0] - kernel.shape[0]) // stride + 1
    cols = (padded.shape[1] - kernel.shape[1]) // stride + 1
    out = np.zeros((rows, cols, kernel.shape[2] * kernel.shape[3]))
    for y in range(rows):
        for x in range(cols):
            window = padded[y * stride : y * stride + kernel.shape[0], x * stride : x * stride + kernel.shape[1]]
            for c in range(kernel.shape[2]):
                for m in range(kernel.shape[3]):
                    out[y, x, c * kernel.shape[3] + m] = np.sum(window[:, :, c] * kernel[:, :, c, m])
    return out


def check_value(inspection, expected):
    """The inspection equals the textbook value, and both equal what TensorFlow computed."""
    np.testing.assert_allclose(expected, inspection.stored, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inspection.value, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.tf
@pytest.mark.parametrize("row, col, channel", [(0, 0, 0), (0, 3, 7), (2, 1, 11), (3, 3, 4)])
def test_depthwise_with_a_depth_multiplier_reads_one_input_channel(graph, row, col, channel):
    values, weights = graph_values(graph, "relu6"), graph_weights(graph, "depthwise")
    kernel = weights["kernel"]  # Keras 3 names a depthwise kernel 'kernel': (3, 3, 6 channels, multiplier 2)
    expected = textbook_depthwise(values, kernel, 2, "same")[row, col, channel] + weights["bias"][channel]
    inspection = inspect_cell(graph, "depthwise", (row, col, channel), epoch=0, sample=1)
    assert inspection.kind == kinds.CONVOLUTION and len(inspection.terms) == 9
    assert {term.source[2] for term in inspection.terms} == {channel // 2}
    for term in inspection.terms:
        i, j = term.tap
        r, c = row * 2 + i, col * 2 + j  # 'same' padding of 3 over 8 with stride 2: 0 before, 1 after
        assert term.source[:2] == (r, c) and term.padding == (r >= 8 or c >= 8)
        assert term.weight == np.float32(kernel[i, j, channel // 2, channel % 2])
        assert term.value == (0.0 if term.padding else np.float32(values[r, c, channel // 2]))
    np.testing.assert_allclose(inspection.total, expected, rtol=1e-5, atol=1e-6)
    check_value(inspection, expected)
    assert (row, col) != (3, 3) or any(term.padding for term in inspection.terms)


@pytest.mark.tf
@pytest.mark.parametrize("row, col, channel", [(0, 0, 2), (1, 2, 0), (3, 3, 4)])
def test_separable_shows_each_depthwise_window_then_the_pointwise_sum(graph, row, col, channel):
    values, weights = graph_values(graph, "swish"), graph_weights(graph, "separable")
    depthwise = textbook_depthwise(values, weights["depthwise_kernel"], 1, "same")  # (4, 4, 24)
    pointwise = weights["pointwise_kernel"][0, 0]  # (24, 5)
    total = depthwise[row, col] @ pointwise[:, channel] + weights["bias"][channel]
    inspection = inspect_cell(graph, "separable", (row, col, channel), epoch=0, sample=1)
    assert inspection.kind == kinds.SEPARABLE
    assert [stage.source for stage in inspection.pointwise] == [(k,) for k in range(24)]
    np.testing.assert_allclose(
        [stage.value for stage in inspection.pointwise], depthwise[row, col], rtol=1e-5, atol=1e-6
    )
    assert [stage.weight for stage in inspection.pointwise] == [float(np.float32(w)) for w in pointwise[:, channel]]
    assert len(inspection.terms) == 24 * 9
    assert all(term.source[2] == term.into // 2 for term in inspection.terms)  # depth multiplier 2
    np.testing.assert_allclose(inspection.total, total, rtol=1e-5, atol=1e-6)
    check_value(inspection, max(total, 0.0))
    text = inspection.text()
    assert "depthwise 23 (channel 11):" in text and "pointwise" in text
    assert inspection.equation().startswith("pointwise sum of 24 products") and "-> relu ->" in inspection.equation()


def textbook_transpose(values, kernel, stride, out_size):
    """Keras' Conv2DTranspose as a scatter: every input cell adds value x kernel around (r*stride, c*stride);
    the surplus beyond ``out_size`` is cut, the larger half after. Also which (r, c, i, j) reach each output cell."""
    rows, cols, _ = values.shape
    size = kernel.shape[0]
    full = np.zeros(((rows - 1) * stride + size, (cols - 1) * stride + size, kernel.shape[2]))
    reaching = {}
    for r in range(rows):
        for c in range(cols):
            for i in range(size):
                for j in range(size):
                    full[r * stride + i, c * stride + j] += kernel[i, j] @ values[r, c]
                    reaching.setdefault((r * stride + i, c * stride + j), set()).add((r, c, (i, j)))
    before = (full.shape[0] - out_size) // 2
    cropped = full[before : before + out_size, before : before + out_size]
    return cropped, {(y - before, x - before): found for (y, x), found in reaching.items()}


@pytest.mark.tf
@pytest.mark.parametrize(
    "layer, source, stride, activation", [("up", "concat", 2, lambda v: v), ("up_valid", "layer_norm", 2, np.tanh)]
)
def test_transposed_convolution_lists_the_input_cells_that_scatter_onto_the_cell(
    graph, layer, source, stride, activation
):
    values, weights = graph_values(graph, source), graph_weights(graph, layer)
    out_rows, out_cols, filters = graph.layer(layer).output_shape
    scattered, reaching = textbook_transpose(values, weights["kernel"], stride, out_rows)
    for row in range(out_rows):
        for col in range(out_cols):
            channel = (row + col) % filters
            inspection = inspect_cell(graph, layer, (row, col, channel), epoch=0, sample=1)
            assert inspection.kind == kinds.CONVOLUTION
            assert {(*term.source[:2], term.tap) for term in inspection.terms} == reaching.get((row, col), set())
            assert len(inspection.terms) == len(reaching.get((row, col), ())) * values.shape[2]
            total = scattered[row, col, channel] + weights["bias"][channel]
            np.testing.assert_allclose(inspection.total, total, rtol=1e-5, atol=1e-6)
            check_value(inspection, activation(total))
    text = inspect_cell(graph, layer, (1, 1, 0), epoch=0, sample=1).text()
    assert f"cells of {source} that scatter onto this cell" in text and "through kernel tap (" in text


@pytest.mark.tf
def test_add_and_multiply_show_each_input_at_the_cell(graph):
    separable, gate = graph_values(graph, "separable"), graph_values(graph, "gate")
    inspection = inspect_cell(graph, "excite", (2, 3, 4), epoch=0, sample=1)
    assert inspection.kind == kinds.MERGE and inspection.source_layer is None
    assert [(term.layer, term.source) for term in inspection.terms] == [("separable", (2, 3, 4)), ("gate", (0, 0, 4))]
    assert [term.value for term in inspection.terms] == [
        float(np.float32(separable[2, 3, 4])),
        float(np.float32(gate[0, 0, 4])),
    ]
    check_value(inspection, separable[2, 3, 4] * gate[0, 0, 4])
    assert " x " in inspection.equation()
    excite, shortcut = graph_values(graph, "excite"), graph_values(graph, "shortcut")
    inspection = inspect_cell(graph, "add", (1, 0, 2), epoch=0, sample=1)
    assert [term.layer for term in inspection.terms] == ["excite", "shortcut"]
    check_value(inspection, excite[1, 0, 2] + shortcut[1, 0, 2])
    assert inspection.equation().endswith(f"= {inspection.value:.4g}") and " + " in inspection.equation()
    assert "shortcut channel 2, row 1, column 0:" in inspection.text()


@pytest.mark.tf
@pytest.mark.parametrize(
    "channel, source, source_channel", [(3, "relu", 3), (4, "relu", 4), (5, "swish", 0), (16, "swish", 11)]
)
def test_concatenate_names_the_input_and_its_channel(graph, channel, source, source_channel):
    relu, swish = graph_values(graph, "relu"), graph_values(graph, "swish")
    expected = np.concatenate([relu, swish], axis=-1)[1, 2, channel]
    inspection = inspect_cell(graph, "concat", (1, 2, channel), epoch=0, sample=1)
    assert inspection.kind == kinds.CONCATENATION and inspection.source_layer == source
    assert inspection.terms[0].layer == source and inspection.terms[0].source == (1, 2, source_channel)
    check_value(inspection, expected)
    first = 0 if source == "relu" else 5
    assert (
        f"from input {1 + (source == 'swish')} of 2, {source}, which gives channels {first} to "
        f"{first + (4 if source == 'relu' else 11)} of concat" in inspection.text()
    )


@pytest.mark.tf
def test_concatenating_one_dimensional_layers(graph):
    inspection = inspect_cell(graph, "features", 4, epoch=0, sample=0)
    assert inspection.terms[0].layer == "global_mean" and inspection.terms[0].source == (1,)
    check_value(inspection, graph_values(graph, "global_mean", 0)[1])


@pytest.mark.tf
def test_global_average_pooling_takes_the_whole_map(graph):
    values = graph_values(graph, "separable")[:, :, 2]
    inspection = inspect_cell(graph, "squeeze", (0, 0, 2), epoch=0, sample=1)  # keepdims: (1, 1, 5)
    assert inspection.kind == kinds.GLOBAL_AVERAGE_POOLING and inspection.count == 16
    assert [term.source for term in inspection.terms] == [(r, c, 2) for r in range(4) for c in range(4)]
    np.testing.assert_allclose(inspection.total, values.sum(), rtol=1e-6, atol=1e-6)
    check_value(inspection, values.mean())
    assert inspection.equation() == f"mean of 16 values: {values.sum():.4g} / 16 = {inspection.value:.4g}"


@pytest.mark.tf
def test_global_max_pooling_names_the_winner(graph):
    values = graph_values(graph, "sigmoid")[:, :, 1]
    inspection = inspect_cell(graph, "global_max", 1, epoch=0, sample=1)
    row, col = np.unravel_index(np.argmax(values), values.shape)
    assert inspection.kind == kinds.GLOBAL_MAX_POOLING and inspection.count == 64 and len(inspection.terms) == 64
    assert inspection.terms[inspection.winner].source == (row, col, 1)
    check_value(inspection, values.max())
    assert inspection.equation() == f"max of 64 values = {inspection.value:.4g} at row {row}, column {col}"


@pytest.mark.tf
def test_global_pooling_over_a_large_map_lists_the_strongest_values(graph):
    values = graph_values(graph, "leaky")[:, :, 0]  # 9x9 = 81 values: more than are listed
    inspection = inspect_cell(graph, "global_mean", 0, epoch=0, sample=1, top=5)
    strongest = np.argsort(-np.abs(values.ravel()), kind="stable")[:5]
    assert [term.source[:2] for term in inspection.terms] == [divmod(int(i), 9) for i in strongest]
    assert inspection.count == 81 and inspection.hidden_terms == 76
    np.testing.assert_allclose(inspection.hidden_sum, np.delete(values.ravel(), strongest).sum(), rtol=1e-5, atol=1e-6)
    check_value(inspection, values.mean())
    assert "76 more: sum" in inspection.text()


@pytest.mark.tf
@pytest.mark.parametrize("layer, source, channel", [("norm", "stem", 4), ("dw_norm", "depthwise", 9)])
def test_batch_normalization_shows_its_statistics(graph, layer, source, channel):
    x, weights = graph_values(graph, source)[2, 1, channel], graph_weights(graph, layer)
    gamma = weights["gamma"][channel] if "gamma" in weights else 1.0  # dw_norm has scale=False: no gamma
    expected = (x - weights["moving_mean"][channel]) / np.sqrt(
        weights["moving_variance"][channel] + 1e-3
    ) * gamma + weights["beta"][channel]
    inspection = inspect_cell(graph, layer, (2, 1, channel), epoch=0, sample=1)
    assert inspection.kind == kinds.NORMALIZATION and inspection.terms[0].value == np.float32(x)
    assert inspection.parameter("moving_mean") == np.float32(weights["moving_mean"][channel])
    assert inspection.parameter("moving_variance") == np.float32(weights["moving_variance"][channel])
    assert inspection.parameter("gamma") == (None if layer == "dw_norm" else np.float32(gamma))
    check_value(inspection, expected)
    assert ("x " in inspection.equation()) == (layer == "norm") and "sqrt(" in inspection.equation()


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.tf
@pytest.mark.parametrize(
    "layer, source, name, function",
    [
        ("relu6", "norm", "ReLU(max_value=6)", lambda x: min(max(x, 0.0), 6.0)),
        ("swish", "dw_norm", "swish", lambda x: x * sigmoid(x)),
        ("relu", "add", "relu", lambda x: max(x, 0.0)),
        ("sigmoid", "up", "sigmoid", sigmoid),
        ("leaky", "up_valid", "LeakyReLU(negative_slope=0.2)", lambda x: x if x >= 0 else 0.2 * x),
    ],
)
def test_activation_layers_show_input_function_and_result(graph, layer, source, name, function):
    inputs = graph_values(graph, source)
    cells = [np.unravel_index(index, inputs.shape) for index in (np.argmin(inputs), np.argmax(inputs))]
    cells.append(np.unravel_index(np.argmin(np.abs(inputs - 0.5)), inputs.shape))
    if layer == "relu6":
        assert inputs.max() > 6 and inputs.min() < 0  # the clip at 6 and at 0 are both exercised
    for cell in cells:
        cell = tuple(int(i) for i in cell)
        inspection = inspect_cell(graph, layer, cell, epoch=0, sample=1)
        assert inspection.kind == kinds.ACTIVATION and inspection.source_layer == source
        assert inspection.terms[0].source == cell and inspection.terms[0].value == np.float32(inputs[cell])
        assert inspection.activation in (name, "silu" if name == "swish" else name)  # Keras 3 saves swish as silu
        check_value(inspection, function(inputs[cell]))
        assert (
            inspection.equation() == f"{inspection.activation}({inspection.terms[0].value:.4g}) = "
            f"{inspection.value:.4g}"
        )


@pytest.mark.tf
def test_a_layer_that_cannot_be_inspected_is_one_clear_error(graph):
    with pytest.raises(
        BlenderCNNError,
        match=r"^layer 'layer_norm': is a LayerNormalization layer, whose cells "
        r"inspection cannot take apart term by term$",
    ):
        inspect_cell(graph, "layer_norm", (0, 0, 0), epoch=0)
    assert inspect_cell(graph, "input", (1, 2, 0), epoch=0).kind == kinds.VALUE


# ---------------------------------------------------------------- more layers of the same families


def extras_model(keras):
    L = keras.layers
    inputs = keras.Input((5, 5, 3), name="input")
    scaled = L.Rescaling([0.5, 2.0, -1.0], offset=0.25, name="rescale")(inputs)
    normalize = L.Normalization(name="normalize")
    normalize.adapt(np.random.default_rng(1).normal(0, 1, (4, 5, 5, 3)).astype(np.float32))
    normalized = normalize(scaled)
    prelu, elu = L.PReLU(name="prelu")(normalized), L.ELU(name="elu")(normalized)
    maximum = L.Maximum(name="maximum")([prelu, elu])
    average = L.Average(name="average")([prelu, elu, normalized])
    subtract = L.Subtract(name="subtract")([prelu, elu])
    conv_softmax = L.Conv2D(4, 3, padding="same", activation="softmax", name="conv_softmax")(average)
    per_pixel = L.Dense(2, name="per_pixel")(L.Softmax(name="softmax")(subtract))
    joined = L.Concatenate(name="join")([conv_softmax, per_pixel, maximum])
    pooled = L.GlobalMaxPooling2D(name="pooled")(joined)
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="output")(pooled))


@pytest.fixture(scope="module")
def extras(keras, tmp_path_factory):
    return extracted(keras, extras_model(keras), tmp_path_factory.mktemp("extras"), seed=4)


def softmax(values):
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


@pytest.mark.tf
def test_rescaling_and_normalization_show_their_numbers(extras):
    x = graph_values(extras, "input")[3, 1]
    inspection = inspect_cell(extras, "rescale", (3, 1, 2), epoch=0, sample=1)
    assert inspection.kind == kinds.NORMALIZATION
    assert (inspection.parameter("scale"), inspection.parameter("offset")) == (-1.0, 0.25)
    check_value(inspection, x[2] * -1.0 + 0.25)
    scaled, weights = graph_values(extras, "rescale")[3, 1], graph_weights(extras, "normalize")
    inspection = inspect_cell(extras, "normalize", (3, 1, 1), epoch=0, sample=1)
    assert inspection.parameter("mean") == np.float32(weights["mean"][1])
    check_value(inspection, (scaled[1] - weights["mean"][1]) / np.sqrt(weights["variance"][1]))
    assert inspection.equation().startswith(f"({scaled[1]:.4g} - ")


@pytest.mark.tf
def test_prelu_and_elu(extras):
    x, alpha = graph_values(extras, "normalize"), graph_weights(extras, "prelu")["alpha"]
    negative = tuple(int(i) for i in np.unravel_index(np.argmin(x), x.shape))
    inspection = inspect_cell(extras, "prelu", negative, epoch=0, sample=1)
    assert inspection.activation == f"PReLU(alpha={alpha[negative]:.4g})"
    check_value(inspection, alpha[negative] * x[negative])
    inspection = inspect_cell(extras, "elu", negative, epoch=0, sample=1)
    assert inspection.activation == "ELU(alpha=1)"
    check_value(inspection, np.expm1(x[negative]))


@pytest.mark.tf
@pytest.mark.parametrize(
    "layer, function, equation",
    [
        ("maximum", lambda p, e, n: max(p, e), "max("),
        ("average", lambda p, e, n: (p + e + n) / 3, "mean("),
        ("subtract", lambda p, e, n: p - e, " - "),
    ],
)
def test_the_other_merges(extras, layer, function, equation):
    prelu, elu, normalized = (graph_values(extras, name)[2, 4, 0] for name in ("prelu", "elu", "normalize"))
    inspection = inspect_cell(extras, layer, (2, 4, 0), epoch=0, sample=1)
    assert inspection.kind == kinds.MERGE and len(inspection.terms) == (3 if layer == "average" else 2)
    check_value(inspection, function(prelu, elu, normalized))
    assert equation in inspection.equation()


@pytest.mark.tf
def test_softmax_over_the_channels_of_a_convolution_and_of_a_layer(extras):
    average, weights = graph_values(extras, "average"), graph_weights(extras, "conv_softmax")
    padded = np.pad(average, ((1, 1), (1, 1), (0, 0)))
    logits = np.einsum("ijc,ijcf->f", padded[0:3, 1:4], weights["kernel"]) + weights["bias"]  # pixel (0, 1)
    inspection = inspect_cell(extras, "conv_softmax", (0, 1, 2), epoch=0, sample=1)
    np.testing.assert_allclose(inspection.total, logits[2], rtol=1e-5, atol=1e-6)
    check_value(inspection, softmax(logits)[2])
    subtract = graph_values(extras, "subtract")[4, 0]
    inspection = inspect_cell(extras, "softmax", (4, 0, 1), epoch=0, sample=1)
    check_value(inspection, softmax(subtract)[1])
    assert "softmax over the 3 channels through this cell" in inspection.text()


@pytest.mark.tf
def test_dense_on_a_feature_map_works_pixel_by_pixel(extras):
    values, weights = graph_values(extras, "softmax")[1, 3], graph_weights(extras, "per_pixel")
    inspection = inspect_cell(extras, "per_pixel", (1, 3, 1), epoch=0, sample=1)
    assert inspection.kind == kinds.DENSE and {term.source[:2] for term in inspection.terms} == {(1, 3)}
    check_value(inspection, values @ weights["kernel"][:, 1] + weights["bias"][1])
    assert "channel 0, row 1, column 3: " in inspection.text()


# ---------------------------------------------------------------- published graphs, whole


@pytest.mark.tf
@pytest.mark.parametrize("application", ["MobileNetV2", "EfficientNetB0"])
def test_every_layer_of_a_published_graph_is_inspected_as_tensorflow_computed_it(keras, tmp_path, application):
    """Small, untrained keras.applications: every layer explained, to the value TensorFlow stored."""
    options = {"MobileNetV2": dict(alpha=0.35)}.get(application, {})
    model = getattr(keras.applications, application)(weights=None, input_shape=(32, 32, 3), classes=3, **options)
    network = extracted(keras, model, tmp_path, noise=0.05, gamma=(0.5, 1.5))
    rng = np.random.default_rng(2)
    seen_kinds = set()
    for layer in network.layers:
        position = tuple(int(rng.integers(size)) for size in layer.output_shape)
        inspection = inspect_cell(network, layer.name, position, epoch=0, sample=1)
        seen_kinds.add(inspection.kind)
        values = network.activations(layer.name, 0, 1)
        np.testing.assert_allclose(
            inspection.value,
            inspection.stored,
            rtol=1e-4,
            atol=1e-5 * max(float(np.abs(values).max()), 1.0),
            err_msg=layer.name,
        )
        assert inspection.text().endswith(inspection.equation())
    assert {
        kinds.CONVOLUTION,
        kinds.NORMALIZATION,
        kinds.ACTIVATION,
        kinds.MERGE,
        kinds.GLOBAL_AVERAGE_POOLING,
        kinds.DENSE,
        kinds.VALUE,
    } <= seen_kinds
