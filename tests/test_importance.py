"""Importance (docs/importance.md): the extractor's gradients against TensorFlow by hand, the numpy fallback,
and the version-3 fields of the bundle format."""

import copy
import os

import numpy as np
import pytest
from bundle_files import expect_error, save_nudged_checkpoints, small_bundle, stamped, write_raw

from blender_cnn.core.bundle import FORMAT_VERSION, load_bundle, write_bundle
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.importance import (
    ACTIVATION_X_WEIGHT,
    GRADIENT_X_ACTIVATION,
    METHOD_LABELS,
    class_samples,
    edge_importance,
    importance_method,
    neuron_importance,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
CLASSES = 3
# Two samples of class 0 and of class 1, none of class 2, one unlabelled: class 2 is averaged over every sample.
LABELS = np.array([0, 1, 0, 1, -1], dtype=np.int32)
EPOCHS = 2
DENSE_LAYERS = ("hidden", "output")
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def quiet(*_args, **_kwargs):
    pass


# ---- numpy only: the format and the rules ----


def importance_bundle():
    """``small_bundle`` with version-3 importance for every layer and output gradients for its dense layer."""
    manifest, arrays = small_bundle()
    manifest = copy.deepcopy(manifest)
    rng = np.random.default_rng(3)
    epochs, samples, classes = len(manifest["epochs"]), len(arrays["samples/labels"]), len(manifest["class_names"])
    manifest["importance"] = {"method": GRADIENT_X_ACTIVATION, "score": "logit"}
    for layer in manifest["layers"]:
        layer["importance"] = f"importance/{layer['name']}"
        arrays[layer["importance"]] = rng.random((epochs, classes + 1, layer["output_shape"][-1]), dtype=np.float32)
    dense = manifest["layers"][2]
    dense["output_gradients"] = "output_gradients/dense"
    arrays["output_gradients/dense"] = rng.normal(size=(epochs, samples, classes, 2)).astype(np.float32)
    return manifest, arrays


def test_format_version_is_4():  # importance came with version 3, several inputs and outputs with 4
    assert FORMAT_VERSION == 4


def test_importance_round_trips_as_version_3(tmp_path):
    manifest, arrays = importance_bundle()
    bundle = load_bundle(write_bundle(tmp_path / "v3.bcnn.npz", manifest, arrays))
    assert bundle.version == 3 and bundle.importance_info == {"method": GRADIENT_X_ACTIVATION, "score": "logit"}
    assert importance_method(bundle) == GRADIENT_X_ACTIVATION
    np.testing.assert_array_equal(bundle.importance("dense", epoch=1), arrays["importance/dense"][1])
    np.testing.assert_array_equal(bundle.output_gradients("dense", epoch=-1), arrays["output_gradients/dense"][-1])
    assert bundle.output_gradients("flatten") is None
    np.testing.assert_array_equal(neuron_importance(bundle, "flatten", 2), arrays["importance/flatten"][2])


def test_bundles_without_importance_stay_version_1_and_use_the_fallback(tmp_path):
    manifest, arrays = small_bundle()
    bundle = load_bundle(write_bundle(tmp_path / "v1.bcnn.npz", manifest, arrays))
    assert bundle.version == 1 and bundle.importance("dense") is None and bundle.importance_info is None
    assert importance_method(bundle) == ACTIVATION_X_WEIGHT
    assert set(METHOD_LABELS) == {GRADIENT_X_ACTIVATION, ACTIVATION_X_WEIGHT}


def test_a_version_2_bundle_loads_with_the_fallback_method(tmp_path):
    manifest, arrays = small_bundle()
    arrays["samples/labels"] = np.array([-1, 1], dtype=np.int32)
    bundle = load_bundle(write_raw(tmp_path / "v2.bcnn.npz", stamped(manifest, version=2), arrays))
    assert bundle.version == 2 and importance_method(bundle) == ACTIVATION_X_WEIGHT
    # Class 0 has no sample of its own: both samples stand for it; class 1 has sample 1.
    magnitudes = np.abs(arrays["activations/flatten"][1])
    expected = np.stack([magnitudes.mean(axis=0), magnitudes[1]])
    np.testing.assert_allclose(
        neuron_importance(bundle, "flatten", 1),
        np.concatenate([expected, expected.mean(axis=0, keepdims=True)]),
        rtol=1e-6,
    )


def test_class_samples_rule():
    groups = class_samples(np.array([2, 0, -1, 2]), 4)
    assert [group.tolist() for group in groups] == [[1], [0, 1, 2, 3], [0, 3], [0, 1, 2, 3]]


@pytest.mark.parametrize(
    "change, fragments",
    [
        (
            lambda m, a: a.update({"importance/dense": np.zeros((3, 2, 2), np.float32)}),
            ["layer 'dense' importance", "'importance/dense' has shape (3, 2, 2), expected (3, 3, 2)"],
        ),
        (
            lambda m, a: a.update({"importance/dense": np.zeros((3, 3, 2), np.float64)}),
            ["'importance/dense' has dtype float64, expected float32"],
        ),
        (
            lambda m, a: a.pop("output_gradients/dense"),
            ["layer 'dense' output gradients", "'output_gradients/dense' is missing"],
        ),
        (
            lambda m, a: a.update({"output_gradients/dense": np.zeros((3, 2, 2, 3), np.float32)}),
            ["'output_gradients/dense' has shape (3, 2, 2, 3), expected (3, 2, 2, 2)"],
        ),
        (
            lambda m, a: m["layers"][1].update(output_gradients="importance/flatten"),
            ["layer 'flatten': 'output_gradients' belong to Dense layers"],
        ),
        (lambda m, a: m["layers"][1].update(importance=7), ["layer 'flatten' 'importance' must be an array name"]),
        (lambda m, a: m.pop("importance"), ["the manifest's 'importance' object", "is missing"]),
        (lambda m, a: m.update(importance={"method": 1}), ["'importance' must be an object with the strings"]),
    ],
)
def test_malformed_importance_is_refused(tmp_path, change, fragments):
    manifest, arrays = importance_bundle()
    change(manifest, arrays)
    path = write_raw(tmp_path / "bad.bcnn.npz", stamped(manifest, version=3), arrays)
    expect_error(path, *fragments)
    with pytest.raises(BlenderCNNError):
        write_bundle(tmp_path / "written.bcnn.npz", manifest, arrays)


def test_importance_in_an_older_version_is_refused(tmp_path):
    manifest, arrays = importance_bundle()
    path = write_raw(tmp_path / "old.bcnn.npz", stamped(manifest, version=2), arrays)
    expect_error(path, "uses importance, which needs bundle version 3 (the file says 2)")


def test_edge_importance_refuses_layers_without_a_connection_matrix(tmp_path):
    manifest, arrays = importance_bundle()
    bundle = load_bundle(write_bundle(tmp_path / "v3.bcnn.npz", manifest, arrays))
    with pytest.raises(BlenderCNNError, match="layer 'flatten': is not a Dense layer fed by a one-dimensional layer"):
        edge_importance(bundle, "flatten", 0, 0)
    with pytest.raises(BlenderCNNError, match="class index 3 is neither"):
        edge_importance(bundle, "dense", 0, 3)
    with pytest.raises(BlenderCNNError, match="epoch index 3 does not exist"):
        neuron_importance(bundle, "dense", 3)


# ---- TensorFlow: a tiny model, extracted, against gradients taken by hand ----


def tiny_model(keras):
    inputs = keras.Input((6, 6, 1), name="pixels")
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs of the tiny model, its samples, and its bundle extracted in batches of two samples."""
    keras = pytest.importorskip("keras")
    from blender_cnn.extract import keras_bundle, keras_epochs

    folder = tmp_path_factory.mktemp("importance")
    keras.utils.set_random_seed(5)
    model = tiny_model(keras)
    rng = np.random.default_rng(5)
    save_nudged_checkpoints(model, folder, EPOCHS, rng, noise=0.2)
    np.savez(folder / "samples.npz", inputs=rng.random((len(LABELS), 6, 6, 1), dtype=np.float32), labels=LABELS)
    original = keras_epochs.batch_size
    keras_epochs.batch_size = lambda graph, gradients=False: 2  # three batches: the sums must add up across them
    try:
        path = keras_bundle.extract(folder, folder / "tiny.bcnn.npz", log=quiet)
    finally:
        keras_epochs.batch_size = original
    return folder, load_bundle(path)


def class_rows(per_class_samples):
    """``(K+1, U)`` from ``[(S, U)]`` per class: each class's mean over its samples, then the mean of the classes."""
    groups = [np.flatnonzero(LABELS == k) if np.any(LABELS == k) else np.arange(len(LABELS)) for k in range(CLASSES)]
    rows = np.stack([values[group].mean(axis=0) for values, group in zip(per_class_samples, groups)])
    return np.concatenate([rows, rows.mean(axis=0, keepdims=True)])


def load_epoch(folder, epoch):
    import keras

    return keras.saving.load_model(folder / f"epoch_{epoch:03d}.keras", safe_mode=True, compile=False)


def forward_by_hand(model, x):
    """Every layer's output, the dense layers' pre-activations spelled out; ``logits`` is the softmax's input."""
    import tensorflow as tf

    layer = model.get_layer
    values = {"pixels": x}
    values["conv"] = layer("conv")(x)
    values["relu"] = layer("relu")(values["conv"])
    values["pool"] = layer("pool")(values["relu"])
    values["flatten"] = layer("flatten")(values["pool"])
    values["hidden_z"] = tf.matmul(values["flatten"], layer("hidden").kernel) + layer("hidden").bias
    values["hidden"] = tf.nn.relu(values["hidden_z"])
    values["logits"] = tf.matmul(values["hidden"], layer("output").kernel) + layer("output").bias
    return values


def by_hand(folder, epoch, inputs):
    """Importance of every layer and output gradients of the dense layers, with one tape over the whole model."""
    import tensorflow as tf

    model = load_epoch(folder, epoch)
    x = tf.constant(inputs)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        values = forward_by_hand(model, x)
        scores = [tf.reduce_sum(values["logits"][:, k]) for k in range(CLASSES)]  # samples are independent
    importance = {}
    for layer in ("pixels", "conv", "relu", "pool", "flatten", "hidden", "output"):
        activation = values["logits" if layer == "output" else layer]  # the output layer's activation: its logit
        per_class = []
        for score in scores:
            product = (activation * tape.gradient(score, activation)).numpy()
            per_class.append(np.abs(product.reshape(len(inputs), -1, product.shape[-1]).sum(axis=1)))
        importance[layer] = class_rows(per_class)
    gradients = {
        layer: np.stack([tape.gradient(score, values[key]).numpy() for score in scores], axis=1)
        for layer, key in (("hidden", "hidden_z"), ("output", "logits"))
    }
    return importance, gradients


def edges_by_hand(folder, epoch, inputs, layer_name):
    """``(K+1, in, out)``: per class, the mean over its samples of |w * d(logit)/d(w)|, one sample at a time."""
    import tensorflow as tf

    model = load_epoch(folder, epoch)
    kernel = model.get_layer(layer_name).kernel
    per_sample = np.zeros((len(inputs), CLASSES, *kernel.shape), np.float32)
    for sample in range(len(inputs)):
        with tf.GradientTape(persistent=True) as tape:  # trainable variables are watched by default
            logits = forward_by_hand(model, tf.constant(inputs[sample : sample + 1]))["logits"]
            scores = [logits[0, k] for k in range(CLASSES)]
        for k, score in enumerate(scores):
            per_sample[sample, k] = np.abs(kernel.numpy() * tape.gradient(score, kernel.value).numpy())
    return class_rows([per_sample[:, k] for k in range(CLASSES)])


@pytest.mark.tf
def test_extracted_importance_equals_gradients_by_hand(run):
    folder, bundle = run
    assert bundle.version == 3
    assert bundle.importance_info == {"method": GRADIENT_X_ACTIVATION, "score": "logit"}
    assert {layer.name for layer in bundle.layers if layer.importance} == {layer.name for layer in bundle.layers}
    assert [layer.name for layer in bundle.layers if layer.output_gradients] == list(DENSE_LAYERS)
    inputs = bundle.array("samples/inputs")
    for position in range(EPOCHS):
        importance, gradients = by_hand(folder, bundle.epochs[position], inputs)
        for layer in bundle.layers:
            stored = bundle.array(layer.importance)[position]
            assert stored.dtype == np.float32 and stored.shape == (CLASSES + 1, layer.output_shape[-1])
            assert np.all(stored.max(axis=1) > 0), layer.name  # every class has something to compare
            np.testing.assert_allclose(
                stored, importance[layer.name], **TOLERANCE, err_msg=f"{layer.name} epoch {position}"
            )
            # What the scene reads back is the same by-hand figure, not just whatever the file holds.
            np.testing.assert_allclose(
                neuron_importance(bundle, layer.name, position),
                importance[layer.name],
                **TOLERANCE,
                err_msg=f"{layer.name} epoch {position}, as read back",
            )
        for name in DENSE_LAYERS:
            np.testing.assert_allclose(
                bundle.output_gradients(name, bundle.epochs[position]),
                gradients[name],
                **TOLERANCE,
                err_msg=f"{name} epoch {position}",
            )


@pytest.mark.tf
@pytest.mark.parametrize("layer_name", DENSE_LAYERS)
def test_edge_importance_equals_weight_times_weight_gradient(run, layer_name):
    folder, bundle = run
    inputs = bundle.array("samples/inputs")
    expected = edges_by_hand(folder, bundle.epochs[-1], inputs, layer_name)
    for class_index in range(CLASSES + 1):
        got = edge_importance(bundle, layer_name, EPOCHS - 1, class_index)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected[class_index], **TOLERANCE, err_msg=f"class {class_index}")


@pytest.mark.tf
def test_fallback_without_gradients_equals_numpy(run, tmp_path):
    folder, gradient_bundle = run
    from blender_cnn.extract import keras_bundle

    bundle = load_bundle(keras_bundle.extract(folder, tmp_path / "plain.bcnn.npz", importance=False, log=quiet))
    assert bundle.version == 2 and "importance" not in bundle.manifest  # unlabelled samples need version 2
    assert importance_method(bundle) == ACTIVATION_X_WEIGHT
    for layer in bundle.layers:  # the gradient run's activations, up to its other batch size's rounding
        np.testing.assert_allclose(
            bundle.array(layer.activations), gradient_bundle.array(layer.activations), rtol=1e-5, atol=1e-6
        )
    groups = [np.flatnonzero(LABELS == k) if np.any(LABELS == k) else np.arange(len(LABELS)) for k in range(CLASSES)]
    for position in range(EPOCHS):
        conv = np.abs(bundle.array("activations/conv")[position]).mean(axis=(1, 2))  # (S, channels)
        np.testing.assert_allclose(neuron_importance(bundle, "conv", position), class_rows([conv] * CLASSES), rtol=1e-6)
        for name in DENSE_LAYERS:
            source = bundle.layer(name).inputs[0]
            magnitudes = np.abs(bundle.array(bundle.layer(source).activations)[position])
            kernel = np.abs(bundle.array(f"weights/{name}/kernel")[position])
            per_class = [kernel * magnitudes[group].mean(axis=0)[:, np.newaxis] for group in groups]
            for class_index, expected in enumerate([*per_class, np.mean(per_class, axis=0)]):
                np.testing.assert_allclose(
                    edge_importance(bundle, name, position, class_index), expected, rtol=1e-5, atol=1e-7
                )


@pytest.mark.tf
def test_nested_models_get_the_gradients_of_their_flat_twin(tmp_path):
    """A Sequential backbone inside a functional model, with a skip connection over it, flattened."""
    keras = pytest.importorskip("keras")
    from blender_cnn.extract import keras_bundle

    keras.utils.set_random_seed(6)
    pixels = keras.Input((6, 6, 1), name="pixels")
    conv1, conv2 = (keras.layers.Conv2D(2, 3, padding="same", activation="relu", name=f"conv{n}") for n in (1, 2))
    pool, flatten = keras.layers.MaxPooling2D(name="pool"), keras.layers.Flatten(name="flatten")
    logits = keras.layers.Dense(CLASSES, name="logits")  # no softmax: the score is the output itself
    backbone = keras.Sequential([keras.Input((6, 6, 1)), conv1, conv2], name="backbone")
    nested = keras.Model(pixels, logits(flatten(pool(keras.layers.Add(name="add")([backbone(pixels), pixels])))))
    twin_input = keras.Input((6, 6, 1), name="pixels")
    twin_conv2 = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv2")
    twin_logits = keras.layers.Dense(CLASSES, name="logits")
    hidden = twin_conv2(keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv1")(twin_input))
    twin = keras.Model(
        twin_input,
        twin_logits(
            keras.layers.Flatten(name="flatten")(
                keras.layers.MaxPooling2D(name="pool")(keras.layers.Add(name="add")([hidden, twin_input]))
            )
        ),
    )
    twin.set_weights(nested.get_weights())
    inputs = np.random.default_rng(6).random((len(LABELS), 6, 6, 1), dtype=np.float32)
    bundles = {}
    for name, model in (("nested", nested), ("twin", twin)):
        folder = tmp_path / name
        folder.mkdir()
        model.save(folder / "epoch_000.keras")
        np.savez(folder / "samples.npz", inputs=inputs, labels=LABELS)
        bundles[name] = load_bundle(keras_bundle.extract(folder, folder / "net.bcnn.npz", log=quiet))
    assert bundles["nested"].importance_info["score"] == "output"
    for layer in bundles["twin"].layers:
        nested_name = f"backbone/{layer.name}" if layer.name in ("conv1", "conv2") else layer.name
        np.testing.assert_allclose(
            bundles["nested"].importance(nested_name, 0),
            bundles["twin"].importance(layer.name, 0),
            **TOLERANCE,
            err_msg=layer.name,
        )
    np.testing.assert_allclose(
        bundles["nested"].output_gradients("logits", 0),
        np.broadcast_to(np.eye(CLASSES, dtype=np.float32), (len(LABELS), CLASSES, CLASSES)),
    )


@pytest.mark.tf
def test_a_network_without_softmax_scores_its_output(tmp_path):
    keras = pytest.importorskip("keras")
    from blender_cnn.extract import keras_bundle

    keras.utils.set_random_seed(7)
    pixels = keras.Input((6, 6, 1), name="pixels")
    flat = keras.layers.Flatten(name="flatten")(pixels)
    keras.Model(pixels, keras.layers.Dense(CLASSES, activation="sigmoid", name="scores")(flat)).save(
        tmp_path / "epoch_000.keras"
    )
    inputs = np.random.default_rng(7).random((len(LABELS), 6, 6, 1), dtype=np.float32)
    np.savez(tmp_path / "samples.npz", inputs=inputs, labels=LABELS)
    bundle = load_bundle(keras_bundle.extract(tmp_path, tmp_path / "net.bcnn.npz", log=quiet))
    assert bundle.importance_info["score"] == "output"
    scores = bundle.layer_activations("scores", 0)  # the sigmoid's output is the score: d score / d z = s (1 - s)
    expected = np.einsum("sk,kj->skj", scores * (1 - scores), np.eye(CLASSES, dtype=np.float32))
    np.testing.assert_allclose(bundle.output_gradients("scores", 0), expected, **TOLERANCE)
    np.testing.assert_allclose(
        bundle.importance("scores", 0)[:CLASSES],  # unit k matters for class k by |score k|
        np.diag(class_rows([np.abs(scores)] * CLASSES)[np.arange(CLASSES), np.arange(CLASSES)]),
        **TOLERANCE,
    )


@pytest.mark.tf
def test_layers_without_a_gradient_get_no_importance(tmp_path):
    """Discretization outputs integers, so neither it nor the input below it has a gradient; the rest have."""
    keras = pytest.importorskip("keras")
    from blender_cnn.extract import keras_bundle

    values = keras.Input((6,), name="values")
    bins = keras.layers.Discretization(bin_boundaries=[0.5], name="bins")(values)
    embedded = keras.layers.Flatten(name="flatten")(keras.layers.Embedding(2, 3, name="embed")(bins))
    keras.Model(values, keras.layers.Dense(CLASSES, activation="softmax", name="output")(embedded)).save(
        tmp_path / "epoch_000.keras"
    )
    np.savez(
        tmp_path / "samples.npz",
        inputs=np.random.default_rng(8).random((len(LABELS), 6), dtype=np.float32),
        labels=LABELS,
    )
    bundle = load_bundle(keras_bundle.extract(tmp_path, tmp_path / "net.bcnn.npz", log=quiet))
    assert [layer.name for layer in bundle.layers if layer.importance] == ["embed", "flatten", "output"]
    assert importance_method(bundle) == GRADIENT_X_ACTIVATION
    activations = np.abs(bundle.layer_activations("bins", 0))  # the others fall back to the activation measure
    np.testing.assert_allclose(
        neuron_importance(bundle, "bins", 0)[CLASSES], class_rows([activations] * CLASSES)[-1], rtol=1e-6
    )


@pytest.mark.tf
def test_too_many_classes_without_samples_get_zero_rather_than_a_pass_each(tmp_path):
    """Two labelled samples of a 13-class model: a backward pass for each other class would be 11 per batch."""
    keras = pytest.importorskip("keras")
    from blender_cnn.extract import keras_bundle
    from blender_cnn.extract.gradients import EMPTY_CLASS_PASSES_LIMIT

    classes = EMPTY_CLASS_PASSES_LIMIT + 3
    keras.utils.set_random_seed(9)
    pixels = keras.Input((5, 5, 1), name="pixels")
    flat = keras.layers.Flatten(name="flatten")(pixels)
    keras.Model(pixels, keras.layers.Dense(classes, activation="softmax", name="output")(flat)).save(
        tmp_path / "epoch_000.keras"
    )
    labels = np.array([0, 1, -1], dtype=np.int32)  # classes 2.. have no sample
    np.savez(
        tmp_path / "samples.npz", inputs=np.random.default_rng(9).random((3, 5, 5, 1), dtype=np.float32), labels=labels
    )
    lines = []
    bundle = load_bundle(keras_bundle.extract(tmp_path, tmp_path / "net.bcnn.npz", log=lines.append))
    assert bundle.importance_info["classes_without_samples"] == "zero"
    assert any("11 classes have no sample" in str(line) for line in lines)
    rows = bundle.importance("flatten", 0)
    assert np.all(rows[2:classes] == 0) and np.all(rows[:2].sum(axis=1) > 0)
