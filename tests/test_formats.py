"""Every checkpoint format a user may bring, saved with the real Keras/TensorFlow API, against Keras' own outputs."""

import csv
import json
import os

import numpy as np
import pytest
from bundle_files import random_samples, small_design, write_samples

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.extract import __main__ as extract_cli  # noqa: E402
from blender_cnn.extract.keras_bundle import extract  # noqa: E402
from blender_cnn.extract.keras_models import build_model  # noqa: E402
from blender_cnn.extract.samples import Samples  # noqa: E402

# Keras' own checkpoint saving trips this numpy 2 warning; it is not ours to fix.
pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]
SHAPE = (6, 6, 1)
CLASSES = 3
QUIET = {"log": lambda message: None}
PRESET = {**small_design(SHAPE), "training": {"learning_rate": 0.05}}


@pytest.fixture(scope="module")
def data():
    return random_samples(32, SHAPE, CLASSES)


def nested_model():
    """A Sequential backbone inside a functional model, a skip connection, a merge and a layer type the add-on lacks."""
    backbone = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
        ],
        name="backbone",
    )
    image = keras.Input(SHAPE, name="image")
    side = keras.layers.Conv2D(2, 1, name="side")(image)
    merged = keras.layers.Add(name="add")([backbone(image), side])
    joined = keras.layers.Concatenate(name="concat")([merged, side])
    normed = keras.layers.LayerNormalization(name="norm")(joined)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(normed)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="out")(pooled)
    model = keras.Model(image, outputs, name="nested")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def keras_layer(model, flat_name):
    layer = model
    for part in flat_name.split("/"):
        layer = layer.get_layer(part)
    return layer


def assert_epoch_equals_keras(bundle, epoch, model, layer_output=None):
    """Every layer's activations and weights, and the predictions, of ``epoch`` are the model's own."""
    index = bundle.epoch_index(epoch)
    inputs = bundle.array("samples/inputs")
    np.testing.assert_allclose(bundle.array("samples/predictions")[index], model.predict(inputs, verbose=0), atol=1e-5)
    for layer in bundle.layers[1:]:
        if layer_output is not None:
            expected = layer_output(layer.name, inputs)
        elif "/" in layer.name:  # a layer of the nested backbone, which takes the image itself
            outer, inner = layer.name.split("/")
            backbone = model.get_layer(outer)
            expected = keras.Model(backbone.inputs, backbone.get_layer(inner).output)([inputs])
        else:
            expected = keras.Model(model.inputs, model.get_layer(layer.name).output)([inputs])
        stored = bundle.array(layer.activations)[index]
        assert np.max(np.abs(stored - np.asarray(expected))) < 1e-5, layer.name
        stored_weights = bundle.weights(layer.name, epoch)
        variables = keras_layer(model, layer.name).weights
        assert list(stored_weights) == [variable.name for variable in variables], layer.name
        for variable in variables:
            np.testing.assert_array_equal(stored_weights[variable.name], variable.numpy())


def test_keras_run_folder_with_csv_history(tmp_path, data):
    model = nested_model()
    model.fit(
        *data,
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[
            keras.callbacks.ModelCheckpoint(str(tmp_path / "model.{epoch:02d}.keras")),
            keras.callbacks.CSVLogger(str(tmp_path / "training_log.csv")),
        ],
    )
    write_samples(tmp_path / "samples.npz", data)
    bundle = load_bundle(extract(tmp_path, tmp_path / "out.bcnn.npz", **QUIET))

    assert bundle.epochs == [1, 2, 3]  # {epoch} in ModelCheckpoint names counts from 1
    graph = {layer.name: list(layer.inputs) for layer in bundle.layers}
    assert graph == {
        "image": [],
        "side": ["image"],
        "backbone/conv": ["image"],
        "backbone/bn": ["backbone/conv"],
        "add": ["backbone/bn", "side"],
        "concat": ["add", "side"],
        "norm": ["concat"],
        "gap": ["norm"],
        "out": ["gap"],
    }
    assert bundle.manifest["unrecognized_layers"] == ["norm"]
    assert "weights/backbone/conv/kernel" in {w.array for w in bundle.layer("backbone/conv").weights}
    for epoch in (1, 3):
        saved = keras.saving.load_model(tmp_path / f"model.{epoch:02d}.keras", safe_mode=True, compile=False)
        assert_epoch_equals_keras(bundle, epoch, saved)
    assert not np.array_equal(bundle.weights("side", 1)["kernel"], bundle.weights("side", 3)["kernel"])
    # CSVLogger's row "epoch 0" is the first pass, which ModelCheckpoint saved as model.01.
    with open(tmp_path / "training_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    np.testing.assert_allclose(bundle.metric("loss"), [float(row["loss"]) for row in rows], rtol=1e-6)
    np.testing.assert_allclose(bundle.metric("accuracy"), [float(row["accuracy"]) for row in rows], rtol=1e-6)
    assert np.isnan(bundle.metric("val_loss")).all()


def test_single_keras_file_with_json_history_through_the_cli(tmp_path, data, capsys):
    model = nested_model()
    history = model.fit(*data, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    model.save(tmp_path / "final.keras")
    (tmp_path / "history.json").write_text(json.dumps(history.history))
    samples = write_samples(tmp_path.parent / f"{tmp_path.name}_inputs.npz", data)
    out = tmp_path / "final.bcnn.npz"
    assert extract_cli.main([str(tmp_path / "final.keras"), "--samples", str(samples), "--out", str(out)]) == 0
    assert "done in" in capsys.readouterr().out
    bundle = load_bundle(out)
    assert bundle.epochs == [2]  # a lone file is the last epoch of its history
    assert_epoch_equals_keras(bundle, 2, model)
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(bundle.metric(name), history.history[name][-1:], rtol=1e-6)


def test_legacy_h5_full_model_from_tf_keras(tmp_path, data):
    tf_keras = pytest.importorskip("tf_keras")
    image = tf_keras.Input(SHAPE, name="image")
    x = tf_keras.layers.Conv2D(2, 3, activation="relu", name="conv")(image)
    x = tf_keras.layers.MaxPooling2D(2, name="pool")(x)
    x = tf_keras.layers.Flatten(name="flatten")(x)
    outputs = tf_keras.layers.Dense(CLASSES, activation="softmax", name="out")(x)
    model = tf_keras.Model(image, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(*data, epochs=1, verbose=0)
    model.save(tmp_path / "legacy.h5")
    inputs, labels = data
    bundle = load_bundle(extract(tmp_path / "legacy.h5", samples=Samples(inputs[:4], labels[:4]), **QUIET))

    assert bundle.path == str(tmp_path / "legacy.bcnn.npz")
    assert [layer.name for layer in bundle.layers] == ["image", "conv", "pool", "flatten", "out"]
    assert bundle.epochs == [1]

    def layer_output(name, values):
        return tf_keras.Model(model.input, model.get_layer(name).output)(values).numpy()

    index = bundle.epoch_index(1)
    np.testing.assert_allclose(
        bundle.array("samples/predictions")[index], model.predict(inputs[:4], verbose=0), atol=1e-5
    )
    for layer in bundle.layers[1:]:
        stored = bundle.array(layer.activations)[index]
        assert np.max(np.abs(stored - layer_output(layer.name, inputs[:4]))) < 1e-5, layer.name
        keras_weights = model.get_layer(layer.name).get_weights()
        assert len(keras_weights) == len(layer.weights)
        for stored_weight, expected in zip(bundle.weights(layer.name, 1).values(), keras_weights):
            np.testing.assert_array_equal(stored_weight, expected)


@pytest.mark.parametrize("architecture", ["keras beside the weights", "model.to_json()", "preset"])
def test_weights_only_run_with_an_architecture(tmp_path, data, architecture):
    model = build_model(PRESET)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if architecture == "keras beside the weights":
        model.save(run_dir / "net.keras")
        architecture_path = None  # found beside the weights
    elif architecture == "model.to_json()":
        architecture_path = tmp_path / "net.json"
        architecture_path.write_text(model.to_json())
    else:
        architecture_path = tmp_path / "preset.json"
        architecture_path.write_text(json.dumps(PRESET))
    model.fit(
        *data,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[
            keras.callbacks.ModelCheckpoint(str(run_dir / "weights.{epoch:02d}.weights.h5"), save_weights_only=True)
        ],
    )
    write_samples(run_dir / "samples.npz", data)
    bundle = load_bundle(extract(run_dir, architecture=architecture_path, **QUIET))

    assert bundle.path == str(run_dir / "run.bcnn.npz")
    assert bundle.epochs == [1, 2]
    assert bundle.manifest["source"]["kind"] == "weights"
    assert_epoch_equals_keras(bundle, 2, model)  # the model after fitting is the last epoch


def test_tensorflow_checkpoint_manager_run(tmp_path, data):
    import tensorflow as tf

    model = nested_model()
    architecture = tmp_path / "net.keras"
    model.save(architecture)
    run_dir = tmp_path / "ckpts"
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=model.optimizer), str(run_dir), max_to_keep=None
    )
    for epoch in (1, 2):
        model.fit(*data, epochs=1, batch_size=8, verbose=0)
        manager.save(checkpoint_number=epoch)
    write_samples(run_dir / "samples.npz", data)
    assert {"ckpt-1.index", "ckpt-2.index", "checkpoint"} <= set(os.listdir(run_dir))

    bundle = load_bundle(extract(run_dir, architecture=architecture, **QUIET))
    assert bundle.epochs == [1, 2]
    assert bundle.manifest["source"]["kind"] == "tf"
    assert_epoch_equals_keras(bundle, 2, model)
    assert not np.array_equal(bundle.weights("out", 1)["kernel"], bundle.weights("out", 2)["kernel"])

    one = load_bundle(extract(run_dir / "ckpt-2.index", tmp_path / "one.bcnn.npz", architecture=architecture, **QUIET))
    assert one.epochs == [2]
    np.testing.assert_array_equal(one.array("activations/out"), bundle.array("activations/out")[1:])
