"""Models saved by Keras 2 (tf.keras 2.x, written here by tf_keras) import, against tf_keras' own outputs.

Each file is written by the real writer: ``model.save("x.h5")``, ``model.save("dir")`` (a SavedModel with
``keras_metadata.pb``), and the TensorFlow tutorial's run folder (``ModelCheckpoint("cp-{epoch:04d}.ckpt",
save_weights_only=True)``, ``model.to_json()``, ``CSVLogger("training.log")``). Every layer's activations in
the bundle must be tf_keras' own within 1e-5 relative.
"""

import csv
import json
import os
import sys

import numpy as np
import pytest
from bundle_files import random_samples, write_samples

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.extract.keras_bundle import default_bundle_path, extract  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore")]
SHAPE = (8, 8, 1)
CLASSES = 3
QUIET = {"log": lambda message: None}
layers = tf_keras.layers


@pytest.fixture(scope="module")
def data():
    return random_samples(24, SHAPE, CLASSES)


def separable_model():
    """SeparableConv2D, DepthwiseConv2D and BatchNormalization: the Keras 2 configs Keras 3 cannot read itself."""
    image = tf_keras.Input(SHAPE, name="image")
    x = layers.SeparableConv2D(3, 3, padding="same", depth_multiplier=2, name="sep")(image)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.DepthwiseConv2D(3, activation="relu", name="dw")(x)
    x = layers.LeakyReLU(0.2, name="leaky")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(CLASSES, activation="softmax", name="out")(x)
    return compiled(tf_keras.Model(image, outputs, name="separable"))


def nested_model():
    """A Sequential backbone (built on its own Input) inside a functional model, and a skip connection."""
    backbone = tf_keras.Sequential(
        [
            tf_keras.Input(SHAPE),
            layers.Conv2D(2, 3, padding="same", activation="relu", name="conv"),
            layers.BatchNormalization(name="bn"),
        ],
        name="backbone",
    )
    image = tf_keras.Input(SHAPE, name="image")
    side = layers.Conv2D(2, 1, name="side")(image)
    merged = layers.Add(name="add")([backbone(image), side])
    pooled = layers.GlobalAveragePooling2D(name="gap")(merged)
    return compiled(tf_keras.Model(image, layers.Dense(CLASSES, activation="softmax", name="out")(pooled)))


def tutorial_model():
    """The TensorFlow tutorials' way: a Sequential whose first layer takes ``input_shape``."""
    return compiled(
        tf_keras.Sequential(
            [
                layers.Conv2D(2, 3, activation="relu", input_shape=SHAPE, name="conv"),
                layers.MaxPooling2D(name="pool"),
                layers.Flatten(name="flatten"),
                layers.Dropout(0.2, name="dropout"),
                layers.Dense(CLASSES, activation="softmax", name="out"),
            ]
        )
    )


def compiled(model):
    model.compile(
        optimizer=tf_keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def tf_keras_output(model, flat_name, inputs):
    """What tf_keras computes at the bundle's layer ``flat_name`` (``backbone/conv`` for a nested layer)."""
    if "/" in flat_name:  # a layer of a nested backbone, which takes the image itself
        outer, inner = flat_name.split("/")
        model = model.get_layer(outer)
        flat_name = inner
    return tf_keras.Model(model.inputs, model.get_layer(flat_name).output)(inputs, training=False).numpy()


def tf_keras_layer(model, flat_name):
    for part in flat_name.split("/"):
        model = model.get_layer(part)
    return model


def assert_epoch_equals_tf_keras(bundle, epoch, model):
    """Every layer's activations (within 1e-5 relative), weights and the predictions of ``epoch`` are tf_keras'."""
    index = bundle.epoch_index(epoch)
    inputs = bundle.array("samples/inputs")
    predictions = model.predict(inputs, verbose=0)
    assert relative_error(bundle.array("samples/predictions")[index], predictions) < 1e-5
    for layer in bundle.layers[1:]:
        expected = tf_keras_output(model, layer.name, inputs)
        assert relative_error(bundle.array(layer.activations)[index], expected) < 1e-5, layer.name
        variables = tf_keras_layer(model, layer.name).weights
        stored = list(bundle.weights(layer.name, epoch).values())
        assert len(stored) == len(variables), layer.name
        for stored_weight, variable in zip(stored, variables):
            np.testing.assert_array_equal(stored_weight, variable.numpy(), err_msg=f"{layer.name} {variable.name}")


def relative_error(got, expected):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape
    return np.max(np.abs(got - expected)) / max(np.max(np.abs(expected)), 1e-12)


def test_keras2_h5_with_separable_depthwise_and_batch_norm(tmp_path, data):
    model = separable_model()
    model.fit(*data, epochs=1, batch_size=8, verbose=0)  # moving mean and variance away from 0 and 1
    model.save(tmp_path / "model.h5")
    bundle = load_bundle(extract(tmp_path / "model.h5", samples=write_samples(tmp_path / "s.npz", data), **QUIET))

    assert bundle.path == str(tmp_path / "model.bcnn.npz")
    assert [(layer.name, layer.type) for layer in bundle.layers] == [
        ("image", "InputLayer"),
        ("sep", "SeparableConv2D"),
        ("bn", "BatchNormalization"),
        ("relu", "ReLU"),
        ("dw", "DepthwiseConv2D"),
        ("leaky", "LeakyReLU"),
        ("gap", "GlobalAveragePooling2D"),
        ("out", "Dense"),
    ]
    assert bundle.layer("sep").config["depth_multiplier"] == 2
    assert bundle.layer("leaky").config["negative_slope"] == pytest.approx(0.2)
    assert bundle.manifest["unrecognized_layers"] == []
    assert_epoch_equals_tf_keras(bundle, 1, model)


def test_tensorflow_tutorial_run_folder(tmp_path, data):
    """ModelCheckpoint(save_weights_only=True) in TensorFlow's format, model.to_json() and CSVLogger's training.log."""
    model = tutorial_model()
    run_dir = tmp_path / "training_1"
    run_dir.mkdir()
    (run_dir / "model.json").write_text(model.to_json())
    model.fit(
        *data,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[
            tf_keras.callbacks.ModelCheckpoint(str(run_dir / "cp-{epoch:04d}.ckpt"), save_weights_only=True),
            tf_keras.callbacks.CSVLogger(str(run_dir / "training.log")),
        ],
    )
    write_samples(run_dir / "samples.npz", data)
    assert {"cp-0001.ckpt.index", "cp-0002.ckpt.index", "checkpoint", "training.log"} <= set(os.listdir(run_dir))
    assert json.loads(model.to_json())["keras_version"].startswith("2.")
    bundle = load_bundle(extract(run_dir, **QUIET))

    assert bundle.path == str(run_dir / "training_1.bcnn.npz")
    assert bundle.epochs == [1, 2]
    assert bundle.manifest["source"]["kind"] == "tf"
    assert bundle.manifest["source"]["architecture"] == "model.json"
    assert [layer.name for layer in bundle.layers] == ["conv_input", "conv", "pool", "flatten", "dropout", "out"]
    for epoch in (1, 2):
        saved = tf_keras.models.model_from_json((run_dir / "model.json").read_text())
        saved.load_weights(str(run_dir / f"cp-{epoch:04d}.ckpt")).expect_partial()
        assert_epoch_equals_tf_keras(bundle, epoch, saved)
    assert not np.array_equal(bundle.weights("conv", 1)["kernel"], bundle.weights("conv", 2)["kernel"])
    # CSVLogger's row "epoch 0" is the first pass, which ModelCheckpoint saved as cp-0001.
    with open(run_dir / "training.log", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    np.testing.assert_allclose(bundle.metric("loss"), [float(row["loss"]) for row in rows], rtol=1e-6)
    np.testing.assert_allclose(bundle.metric("accuracy"), [float(row["accuracy"]) for row in rows], rtol=1e-6)
    assert bundle.manifest["source"]["history"] == "training.log"


def test_keras2_saved_model_folder(tmp_path, data):
    model = nested_model()
    model.fit(*data, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "saved")
    assert {"saved_model.pb", "keras_metadata.pb"} <= set(os.listdir(tmp_path / "saved"))
    write_samples(tmp_path / "samples.npz", data)  # beside the SavedModel folder, as beside a file
    bundle = load_bundle(extract(tmp_path / "saved", **QUIET))

    assert bundle.path == str(tmp_path / "saved.bcnn.npz")  # beside the folder, not inside it
    graph = {layer.name: list(layer.inputs) for layer in bundle.layers}
    assert graph == {
        "image": [],
        "backbone/conv": ["image"],
        "backbone/bn": ["backbone/conv"],
        "side": ["image"],
        "add": ["backbone/bn", "side"],
        "gap": ["add"],
        "out": ["gap"],
    }
    assert_epoch_equals_tf_keras(bundle, 1, model)
    # Picked by one of its files in a file browser, the SavedModel is still the folder.
    assert default_bundle_path(tmp_path / "saved" / "saved_model.pb") == str(tmp_path / "saved.bcnn.npz")
    picked = load_bundle(extract(tmp_path / "saved" / "keras_metadata.pb", tmp_path / "picked.bcnn.npz", **QUIET))
    np.testing.assert_array_equal(picked.array("activations/out"), bundle.array("activations/out"))


def test_folder_of_per_epoch_saved_models_is_a_run(tmp_path, data):
    model = tutorial_model()
    run_dir = tmp_path / "run"
    model.fit(
        *data,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[tf_keras.callbacks.ModelCheckpoint(str(run_dir / "model-{epoch:02d}"))],
    )
    write_samples(run_dir / "samples.npz", data)
    assert {"model-01", "model-02"} <= set(os.listdir(run_dir))
    bundle = load_bundle(extract(run_dir, **QUIET))

    assert bundle.epochs == [1, 2]
    assert bundle.manifest["source"]["kind"] == "model"
    assert_epoch_equals_tf_keras(bundle, 1, tf_keras.models.load_model(run_dir / "model-01", compile=False))
    assert_epoch_equals_tf_keras(bundle, 2, model)


def test_keras2_checkpoint_of_another_network_names_the_missing_variables(tmp_path, data):
    model = tutorial_model()
    model.fit(*data, epochs=1, batch_size=8, verbose=0)
    model.save_weights(str(tmp_path / "cp-0001.ckpt"))
    other = tf_keras.Sequential([layers.Flatten(input_shape=SHAPE, name="flatten"), layers.Dense(CLASSES, name="out")])
    (tmp_path / "other.json").write_text(other.to_json())
    write_samples(tmp_path / "samples.npz", data)
    with pytest.raises(BlenderCNNError, match=r"cp-0001\.ckpt: does not fit the architecture other\.json") as caught:
        extract(tmp_path, tmp_path / "out.bcnn.npz", **QUIET)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out.bcnn.npz").exists()


def test_arithmetic_on_keras_tensors_and_slashes_in_names_convert(tmp_path, data):
    """Keras 2 records ``x / 127.5 - 1`` and ``tf.nn.relu6(x)`` as TFOpLambda layers; Keras 3 has no such layer,
    and forbids '/' in layer names (MobileNetV3's ``Conv/BatchNorm``)."""
    import tensorflow as tf

    image = tf_keras.Input(SHAPE, name="image")
    x = image / 127.5 - 1.0
    x = layers.Conv2D(2, 3, name="stem/conv")(x)
    x = tf.nn.relu6(x + 3.0) * (1.0 / 6.0)  # MobileNetV3's hard sigmoid
    x = layers.Flatten(name="flatten")(x)
    model = compiled(tf_keras.Model(image, layers.Dense(CLASSES, activation="softmax", name="out")(x)))
    model.fit(*data, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "ops.h5")
    bundle = load_bundle(extract(tmp_path / "ops.h5", samples=write_samples(tmp_path / "s.npz", data), **QUIET))

    assert [(layer.name, layer.type) for layer in bundle.layers] == [
        ("image", "InputLayer"),
        ("tf.math.truediv", "ops.TrueDivide"),
        ("tf.math.subtract", "ops.Subtract"),
        ("stem_conv", "Conv2D"),
        ("tf.__operators__.add", "ops.Add"),
        ("tf.nn.relu6", "ops.Relu6"),
        ("tf.math.multiply", "ops.Multiply"),
        ("flatten", "Flatten"),
        ("out", "Dense"),
    ]
    inputs = bundle.array("samples/inputs")
    keras2_layers = {keras2_layer.name.replace("/", "_"): keras2_layer for keras2_layer in model.layers}
    for layer in bundle.layers[1:]:
        expected = tf_keras.Model(model.inputs, keras2_layers[layer.name].output)(inputs).numpy()
        assert relative_error(bundle.array(layer.activations)[0], expected) < 1e-5, layer.name
    np.testing.assert_array_equal(bundle.weights("stem_conv", 1)["kernel"], model.get_layer("stem/conv").kernel)


def cumulative_sum(image):
    """A TFOpLambda of a TensorFlow function that keras3 lacks: no keras.ops operation is made from it."""
    import tensorflow as tf

    return tf.math.cumsum(image, axis=1)


def doubled(image):
    """A Lambda layer: it stores Python code, which would run on loading, so the file is refused before loading."""
    return layers.Lambda(lambda x: x * 2, name="my_lambda")(image)


@pytest.mark.parametrize(
    ("name", "layer", "refusal"),
    [
        ("ops", cumulative_sum, r"ops\.h5: layer 'tf\.math\.cumsum' is TensorFlow's math\.cumsum"),
        ("lambda", doubled, r"lambda\.h5: layer 'my_lambda' is a Lambda layer"),
    ],
)
def test_what_keras3_cannot_compute_in_a_keras2_file_is_refused_by_name(tmp_path, data, name, layer, refusal):
    image = tf_keras.Input(SHAPE, name="image")
    model = tf_keras.Model(image, layers.Dense(CLASSES, name="out")(layers.Flatten(name="flatten")(layer(image))))
    model.save(tmp_path / f"{name}.h5")
    with pytest.raises(BlenderCNNError, match=refusal):
        extract(
            tmp_path / f"{name}.h5",
            tmp_path / "out.bcnn.npz",
            samples=write_samples(tmp_path / "s.npz", data),
            **QUIET,
        )


def test_a_log_that_is_not_a_csv_logger_file_is_ignored(tmp_path, data):
    model = separable_model()
    model.save(tmp_path / "model.h5")
    (tmp_path / "train.log").write_text("Epoch 1/2\nloss: 1.2\n")
    write_samples(tmp_path / "samples.npz", data)
    bundle = load_bundle(extract(tmp_path / "model.h5", **QUIET))
    assert bundle.manifest["source"]["history"] is None
    assert np.isnan(bundle.metric("loss")).all()


def test_custom_layer_in_a_keras2_saved_model_is_refused_before_loading(tmp_path, data):
    class Doubling(layers.Layer):
        def call(self, inputs):
            return inputs * 2

    image = tf_keras.Input(SHAPE, name="image")
    doubled = Doubling(name="doubling")(image)
    model = tf_keras.Model(image, layers.Dense(CLASSES, name="out")(layers.Flatten(name="flatten")(doubled)))
    model.save(tmp_path / "custom")
    with pytest.raises(
        BlenderCNNError,
        match=r"custom: layer 'doubling' is of class 'Doubling', which is not a Keras "
        "layer",
    ):
        extract(
            tmp_path / "custom", tmp_path / "out.bcnn.npz", samples=write_samples(tmp_path / "s.npz", data), **QUIET
        )


def test_without_tf_keras_a_keras2_h5_falls_back_to_keras3_and_a_json_asks_for_it(tmp_path, data, monkeypatch):
    model = tutorial_model()
    model.save(tmp_path / "model.h5")
    model.save_weights(str(tmp_path / "cp-0001.ckpt"))
    (tmp_path / "model.json").write_text(model.to_json())
    samples = write_samples(tmp_path / "s.npz", data)
    monkeypatch.setitem(sys.modules, "tf_keras", None)  # as in a Python without tf_keras

    bundle = load_bundle(extract(tmp_path / "model.h5", tmp_path / "h5.bcnn.npz", samples=samples, **QUIET))
    assert [layer.name for layer in bundle.layers[1:]] == ["conv", "pool", "flatten", "dropout", "out"]
    with pytest.raises(
        BlenderCNNError,
        match=r"model\.json: was written by Keras 2 \(tf\.keras 2\.x\); reading it "
        "needs the tf_keras package",
    ):
        extract(
            tmp_path / "cp-0001.ckpt.index",
            tmp_path / "ckpt.bcnn.npz",
            architecture=tmp_path / "model.json",
            samples=samples,
            **QUIET,
        )
