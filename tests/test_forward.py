"""The numpy forward pass against Keras itself: layer by layer, and through a real bundle."""

import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from bundle_files import as_if_trained  # noqa: E402

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.core.forward import compute_layer, forward  # noqa: E402
from blender_cnn.core.layer_specs import LAYER_SPECS, OPERATION_TYPE_PREFIX, is_known_layer_type  # noqa: E402
from blender_cnn.core.numpy_layers import ACTIVATIONS  # noqa: E402
from blender_cnn.extract.keras_bundle import extract_run  # noqa: E402

# Keras' own checkpoint saving trips this numpy 2 warning; it is not ours to fix.
pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
    pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`, which is deprecated"),
    pytest.mark.filterwarnings("ignore:.*___pyct_anno:DeprecationWarning"),
]  # TensorFlow's autograph
TOLERANCE = 1e-4
L = keras.layers


def relative_error(computed, expected):
    computed, expected = np.asarray(computed, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return float(np.max(np.abs(computed - expected)) / max(np.max(np.abs(expected)), 1e-6))


class Graph:
    """A functional Keras model written down as (name, layer, input names), so each layer can be checked alone."""

    def __init__(self, input_shape):
        self.input = keras.Input(shape=input_shape, name="input")
        self.tensors = {"input": self.input}
        self.nodes = []

    def add(self, name, layer, *sources):
        taken = [self.tensors[source] for source in sources]
        self.tensors[name] = layer(taken if len(taken) > 1 else taken[0])
        self.nodes.append((name, layer, sources))
        return self

    def randomize_weights(self, seed):
        """Non-trivial biases, BatchNormalization statistics and the like, so that no weight is left at 0 or 1."""
        rng = np.random.default_rng(seed)
        for _, layer, _ in self.nodes:
            for variable in layer.weights:
                if "float" not in str(variable.dtype):
                    continue
                variable.assign(as_if_trained(variable, rng).astype(np.float32))
            if hasattr(layer, "finalize_state"):  # Normalization caches its mean and variance, as on loading
                layer.finalize_state()

    def keras_outputs(self, inputs):
        names = ["input"] + [name for name, _, _ in self.nodes]
        probe = keras.Model(self.input, [self.tensors[name] for name in names])
        return dict(zip(names, (np.asarray(values) for values in probe(inputs, training=False))))


def bundle_config(layer):
    """The layer's config as a bundle stores it: JSON lists and scalars; objects dropped."""
    return json.loads(json.dumps(layer.get_config(), default=lambda _: None))


def check_each_layer(graph, inputs):
    """Every layer computed alone from Keras' own inputs to it; ``{layer type: worst relative error}``."""
    expected = graph.keras_outputs(inputs)
    worst = {}
    for name, layer, sources in graph.nodes:
        weights = {variable.name: variable.numpy() for variable in layer.weights}
        computed = compute_layer(
            type(layer).__name__, bundle_config(layer), weights, [expected[source] for source in sources], name=name
        )
        assert computed.dtype == np.float32
        assert computed.shape == expected[name].shape, name
        error = relative_error(computed, expected[name])
        assert error < TOLERANCE, f"{name} ({type(layer).__name__}): relative error {error:.2e}"
        worst[type(layer).__name__] = max(worst.get(type(layer).__name__, 0.0), error)
    return worst


def convolution_graph():
    # Odd sizes, so that 'same' padding is uneven and 'valid' windows leave pixels over.
    graph = Graph((15, 13, 3))
    graph.add("rescaling", L.Rescaling(0.5, offset=-0.25), "input")
    graph.add("zero_padding", L.ZeroPadding2D(((1, 2), (0, 1))), "rescaling")
    graph.add("conv_same_s2", L.Conv2D(8, 3, strides=2, padding="same", activation="relu"), "zero_padding")
    graph.add("conv_valid", L.Conv2D(6, (3, 2), strides=(2, 1), use_bias=False, activation="elu"), "zero_padding")
    graph.add("conv_dilated", L.Conv2D(8, 3, padding="same", dilation_rate=2), "conv_same_s2")
    graph.add("conv_dilated_valid", L.Conv2D(4, 3, dilation_rate=(2, 1), activation="sigmoid"), "conv_same_s2")
    graph.add("batch_norm", L.BatchNormalization(), "conv_dilated")
    graph.add("relu", L.ReLU(max_value=3.0, negative_slope=0.1, threshold=0.2), "batch_norm")
    graph.add("relu_plain", L.ReLU(), "batch_norm")
    graph.add("relu6", L.ReLU(max_value=6.0), "batch_norm")
    graph.add("skip", L.Add(), "conv_same_s2", "relu")
    graph.add(
        "depthwise",
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dilation_rate=2, activation="relu6"),
        "skip",
    )
    graph.add("depthwise_s2", L.DepthwiseConv2D(3, strides=2), "skip")
    graph.add("separable", L.SeparableConv2D(8, 3, depth_multiplier=2, padding="same", activation="tanh"), "skip")
    graph.add("separable_s2", L.SeparableConv2D(5, (2, 3), strides=2, use_bias=False), "skip")
    graph.add("branches", L.Concatenate(), "depthwise", "separable")
    graph.add("max_same", L.MaxPooling2D(3, strides=2, padding="same"), "branches")
    graph.add("max_valid", L.MaxPooling2D(2), "branches")
    graph.add("average_same", L.AveragePooling2D(3, strides=2, padding="same"), "branches")
    graph.add("average_valid", L.AveragePooling2D((2, 3), strides=(1, 2)), "branches")
    graph.add("transpose_same", L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="sigmoid"), "max_valid")
    graph.add("transpose_valid", L.Conv2DTranspose(4, 3, strides=2, output_padding=1), "max_valid")
    graph.add("transpose_wide_stride", L.Conv2DTranspose(3, (2, 3), strides=(3, 2)), "max_valid")
    graph.add(
        "transpose_same_padded", L.Conv2DTranspose(3, 4, strides=2, padding="same", output_padding=1), "max_valid"
    )
    graph.add("transpose_dilated", L.Conv2DTranspose(3, 3, dilation_rate=2, padding="same"), "max_valid")
    graph.add("global_average", L.GlobalAveragePooling2D(), "branches")
    graph.add("global_max", L.GlobalMaxPooling2D(keepdims=True), "branches")
    graph.add("global_average_kept", L.GlobalAveragePooling2D(keepdims=True), "branches")
    graph.add("leaky", L.LeakyReLU(negative_slope=0.2), "batch_norm")
    graph.add("dropout", L.Dropout(0.5), "leaky")
    graph.add("flatten", L.Flatten(), "max_same")
    graph.add("dense", L.Dense(10, activation="softmax"), "flatten")
    graph.add("dense_spatial", L.Dense(5, activation="swish"), "average_valid")
    graph.add("reshape", L.Reshape((20, -1)), "flatten")
    graph.add("softmax", L.Softmax(axis=1), "reshape")
    graph.add("dense_sequence", L.Dense(3, use_bias=False), "reshape")
    graph.add("batch_norm_axis1", L.BatchNormalization(axis=1, center=False, scale=False, epsilon=0.01), "reshape")
    for name in ("gelu", "selu", "softplus", "hard_sigmoid", "softsign", "linear"):
        graph.add(f"activation_{name}", L.Activation(name), "batch_norm")
    return graph


def extras_graph():
    """Layer types beyond the common ones that the forward pass also computes."""
    graph = Graph((9, 10, 4))
    graph.add("conv", L.Conv2D(4, 3, padding="same"), "input")
    graph.add("grouped", L.Conv2D(6, 3, groups=2, padding="same"), "input")
    graph.add("identity", L.Identity(), "conv")
    graph.add("spatial_dropout", L.SpatialDropout2D(0.5), "conv")
    graph.add("noise", L.GaussianNoise(1.0), "conv")
    graph.add("subtract", L.Subtract(), "input", "conv")
    graph.add("multiply", L.Multiply(), "input", "conv", "identity")
    graph.add("average", L.Average(), "input", "conv")
    graph.add("maximum", L.Maximum(), "input", "conv")
    graph.add("minimum", L.Minimum(), "input", "conv")
    graph.add("cropping", L.Cropping2D(((1, 2), (3, 0))), "conv")
    graph.add("up_sampling", L.UpSampling2D((2, 3)), "conv")
    graph.add("permute", L.Permute((2, 1, 3)), "conv")
    graph.add("prelu", L.PReLU(shared_axes=[1, 2]), "conv")
    graph.add("elu", L.ELU(alpha=0.7), "conv")
    graph.add("layer_norm", L.LayerNormalization(), "conv")
    graph.add("layer_norm_spatial", L.LayerNormalization(axis=[1, 2, 3]), "conv")
    graph.add("layer_norm_rms", L.LayerNormalization(rms_scaling=True, epsilon=0.01), "conv")
    graph.add("rms_norm", L.RMSNormalization(), "conv")
    graph.add("rms_norm_spatial", L.RMSNormalization(axis=[1, 2, 3], epsilon=0.01), "conv")
    graph.add("normalization", L.Normalization(), "conv")
    graph.add("normalization_given", L.Normalization(mean=[0.1, 0.2, -0.3, 0.4], variance=[1.0, 2.0, 0.5, 4.0]), "conv")
    graph.add("normalization_inverted", L.Normalization(axis=(1, 3), invert=True), "conv")
    return graph


@pytest.mark.parametrize("make_graph", [convolution_graph, extras_graph])
def test_each_layer_matches_keras(make_graph):
    graph = make_graph()
    graph.randomize_weights(seed=1)
    inputs = np.random.default_rng(2).normal(0, 1.5, (3, *graph.input.shape[1:])).astype(np.float32)
    worst = check_each_layer(graph, inputs)
    print("\n" + "\n".join(f"{kind:24s} {error:.1e}" for kind, error in sorted(worst.items())))


def test_every_activation_matches_keras():
    x = np.concatenate([np.linspace(-12, 12, 242), [-80.0, -30.0, 30.0, 80.0]]).astype(np.float32).reshape(3, 82)
    for name in ACTIVATIONS:
        expected = np.asarray(keras.activations.get(name)(x))
        computed = compute_layer("Activation", {"activation": name}, {}, [x])
        assert computed.shape == expected.shape, name
        assert relative_error(computed, expected) < TOLERANCE, name


def test_unknown_layer_type_is_named():
    with pytest.raises(BlenderCNNError, match="is a LSTM layer, which the numpy forward pass cannot compute") as caught:
        compute_layer("LSTM", {}, {}, [np.zeros((1, 4, 4), np.float32)], name="lstm_1")
    assert caught.value.where == "layer 'lstm_1'"


def test_unsupported_settings_are_named():
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(BlenderCNNError, match="activation 'wobbly'"):
        compute_layer("Dense", {"activation": "wobbly"}, {"kernel": np.ones((2, 3))}, [x], name="dense")
    with pytest.raises(BlenderCNNError, match="channels_last"):
        compute_layer("MaxPooling2D", {"pool_size": [2, 2], "data_format": "channels_first"}, {}, [x])
    with pytest.raises(BlenderCNNError, match="no 'kernel'"):
        compute_layer("Conv2D", {"filters": 3}, {}, [x], name="conv")


# Layers Keras ships in keras.applications rather than keras.layers, by the module that defines them.
APPLICATION_LAYERS = {
    "LayerScale": "convnext",
    "StochasticDepth": "convnext",
    "CustomScaleLayer": "inception_resnet_v2",
}
# Layers of tf.keras 2.x that Keras 3 dropped; their models still carry them.
KERAS_2_LAYERS = {"ThresholdedReLU"}


def test_registry_uses_keras_names():
    import sys

    for name, spec in LAYER_SPECS.items():
        if name.startswith(OPERATION_TYPE_PREFIX):  # keras.ops operations, by their class
            assert isinstance(getattr(keras.src.ops.numpy, name.removeprefix(OPERATION_TYPE_PREFIX)), type), name
        elif name in APPLICATION_LAYERS:
            assert hasattr(sys.modules[f"keras.src.applications.{APPLICATION_LAYERS[name]}"], name), name
        elif name in KERAS_2_LAYERS:
            import tf_keras

            assert hasattr(tf_keras.layers, name), name
        else:
            assert hasattr(keras.layers, name), name
        for alias in spec.keras_names:  # Keras' other names of the same class
            assert getattr(keras.layers, alias) is getattr(keras.layers, name), alias
    for name in ACTIVATIONS:
        keras.activations.get(name)


# ---------------------------------------------------------------- through a bundle


def bundle_model():
    """A network with every layer type the add-on understands, to go through extraction."""
    inputs = keras.Input(shape=(12, 12, 2), name="image")
    x = L.Rescaling(2.0, offset=-1.0, name="rescale")(inputs)
    x = L.ZeroPadding2D(1, name="pad")(x)
    x = L.Conv2D(6, 3, activation="relu", name="conv1")(x)
    y = L.Conv2D(6, 3, padding="same", dilation_rate=2, name="conv2")(x)
    y = L.BatchNormalization(name="norm")(y)
    x = L.Add(name="skip")([x, y])
    left = L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same", name="depthwise")(x)
    right = L.SeparableConv2D(4, 3, strides=2, padding="same", activation="relu", name="separable")(x)
    x = L.Concatenate(name="merge")([left, right])
    x = L.MaxPooling2D(2, name="max_pool")(x)
    x = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="transpose")(x)
    x = L.LeakyReLU(negative_slope=0.2, name="leaky")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="pool")(x)
    pooled = L.Concatenate(name="pooled")(
        [L.GlobalAveragePooling2D(name="global_mean")(x), L.GlobalMaxPooling2D(name="global_max")(x)]
    )
    x = L.Flatten(name="flatten")(x)
    x = L.Dropout(0.3, name="dropout")(x)
    x = L.ReLU(name="relu")(L.Dense(8, name="hidden")(x))
    x = L.Add(name="join")([x, pooled])
    x = L.Flatten(name="unfold")(L.Reshape((2, 2, 2), name="fold")(x))
    x = L.Activation("tanh", name="tanh")(L.Dense(4, name="logits")(x))
    outputs = L.Softmax(name="output")(x)
    return keras.Model(inputs, outputs, name="forward_test")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("forward_run")
    rng = np.random.default_rng(5)
    model = bundle_model()
    for epoch in range(2):
        for variable in model.weights:  # as if trained: every weight changes between epochs
            shape = tuple(variable.shape)
            values = (
                rng.uniform(0.3, 2.0, shape)
                if variable.name == "moving_variance"
                else variable.numpy() + rng.normal(0, 0.2, shape)
            )
            variable.assign(values.astype(np.float32))
        model.save(run_dir / f"epoch_{epoch:03d}.keras")
    np.savez(
        run_dir / "samples.npz",
        inputs=rng.uniform(0, 1, (3, 12, 12, 2)).astype(np.float32),
        labels=np.arange(3, dtype=np.int32),
    )
    return load_bundle(extract_run(run_dir, run_dir / "forward.bcnn.npz", log=lambda message: None))


def test_every_understood_layer_type_goes_through_extraction(bundle):
    assert {layer.type for layer in bundle.layers} == {name for name in LAYER_SPECS if is_known_layer_type(name)}
    assert not bundle.manifest.get("unrecognized_layers")
    # What the bundle stored is what Keras itself computes, layer by layer.
    model = keras.saving.load_model(os.path.join(os.path.dirname(bundle.path), "epoch_001.keras"))
    names = [layer.name for layer in bundle.layers[1:]]
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    inputs = bundle.array(bundle.manifest["samples"]["inputs"])
    for name, expected in zip(names, probe(inputs, training=False)):
        stored = np.stack([bundle.activations(name, 1, sample) for sample in range(len(inputs))])
        assert relative_error(stored, np.asarray(expected)) < TOLERANCE, name


def test_forward_reproduces_bundle_activations(bundle):
    inputs = bundle.array(bundle.manifest["samples"]["inputs"])
    by_epoch = {}
    for epoch in bundle.epochs:
        outputs = forward(bundle, inputs, epoch)
        assert list(outputs) == [layer.name for layer in bundle.layers]
        for layer in bundle.layers:
            expected = np.stack([bundle.activations(layer.name, epoch, sample) for sample in range(len(inputs))])
            assert outputs[layer.name].dtype == np.float32
            # Bundles from version 2 on may store activations as float16, good to about 5e-4.
            stored_precisely = bundle.array(layer.activations).dtype == np.float32
            error = relative_error(outputs[layer.name], expected)
            assert error < (TOLERANCE if stored_precisely else 1e-3), (
                f"epoch {epoch}, {layer.name} ({layer.type}): relative error {error:.2e}"
            )
        by_epoch[epoch] = outputs
    # The epoch chooses the weights: the two epochs' outputs differ.
    assert not np.allclose(by_epoch[0]["conv1"], by_epoch[1]["conv1"])
    assert np.array_equal(forward(bundle, inputs)["output"], by_epoch[bundle.epochs[-1]]["output"])


def test_forward_takes_one_sample_and_refuses_wrong_shapes(bundle):
    inputs = bundle.array(bundle.manifest["samples"]["inputs"])
    single = forward(bundle, inputs[1], epoch=0)
    assert single["output"].shape == (1, 4)
    np.testing.assert_allclose(single["output"][0], bundle.activations("output", 0, 1), rtol=1e-3, atol=1e-5)
    with pytest.raises(BlenderCNNError, match="have shape"):
        forward(bundle, np.zeros((2, 12, 12, 3), np.float32))
    with pytest.raises(BlenderCNNError, match="no epoch 7"):
        forward(bundle, inputs, epoch=7)
