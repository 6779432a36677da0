"""Streaming extraction: batch by batch and epoch by epoch into the bundle, equal to Keras' own outputs.

Also float16 activations, image files as samples and samples picked per class, through the API and the CLI.
"""

import os

import numpy as np
import pytest
from bundle_files import save_nudged_checkpoints

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.extract import __main__ as extract_cli  # noqa: E402
from blender_cnn.extract import bundle_writing, keras_bundle  # noqa: E402

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]
EPOCHS = 3
SAMPLES = 7
CLASSES = 4


def quiet(*_args, **_kwargs):
    pass


def small_model():
    """A branching CNN, so the streamed graph is not a chain."""
    inputs = keras.Input((12, 12, 1), name="pixels")
    conv1 = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(inputs)
    conv2 = keras.layers.Conv2D(3, 3, padding="same", name="conv2")(conv1)
    added = keras.layers.Add(name="add")([conv1, conv2])
    pooled = keras.layers.MaxPooling2D(name="pool")(added)
    flat = keras.layers.Flatten(name="flatten")(pooled)
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(flat)
    outputs = keras.layers.Dense(CLASSES, name="logits")(hidden)  # logits: the extractor applies softmax
    return keras.Model(inputs, outputs, name="small")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """EPOCHS checkpoints of a random model, weights nudged each epoch, and samples.npz."""
    folder = tmp_path_factory.mktemp("streaming")
    keras.utils.set_random_seed(1)
    model = small_model()
    rng = np.random.default_rng(1)
    save_nudged_checkpoints(model, folder, EPOCHS, rng, noise=0.1)
    np.savez(
        folder / "samples.npz",
        inputs=rng.random((SAMPLES, 12, 12, 1), dtype=np.float32),
        labels=np.arange(SAMPLES, dtype=np.int32) % CLASSES,
        source_index=np.arange(SAMPLES, dtype=np.int32),
    )
    return folder


def keras_outputs(checkpoint, inputs):
    """``{layer name: output}`` and ``{array key: weight}`` straight from Keras, for comparison."""
    model = keras.saving.load_model(checkpoint, safe_mode=True, compile=False)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    outputs = {layer.name: np.asarray(values) for layer, values in zip(layers, probe(inputs, training=False))}
    weights = {
        f"weights/{layer.name}/{variable.name}": variable.numpy() for layer in layers for variable in layer.weights
    }
    return outputs, weights


@pytest.fixture(scope="module")
def streamed(run_dir):
    """The run extracted with a batch budget so small that every layer is written in several batches."""
    original = bundle_writing.ACTIVATION_BATCH_BYTES
    bundle_writing.ACTIVATION_BATCH_BYTES = 3 * 12 * 12 * 3 * 4 * 3  # about 3 samples of every layer per batch
    try:
        path = keras_bundle.extract(run_dir, run_dir / "small.bcnn.npz", log=quiet)
    finally:
        bundle_writing.ACTIVATION_BATCH_BYTES = original
    return load_bundle(path)


def test_streamed_bundle_equals_keras(run_dir, streamed):
    inputs = np.load(run_dir / "samples.npz")["inputs"]
    assert streamed.epochs == list(range(EPOCHS)) and streamed.sample_count == SAMPLES
    np.testing.assert_array_equal(streamed.array("samples/inputs"), inputs)
    for position in range(EPOCHS):
        outputs, weights = keras_outputs(run_dir / f"epoch_{position:03d}.keras", inputs)
        for layer in streamed.layers[1:]:
            np.testing.assert_allclose(
                streamed.array(layer.activations)[position],
                outputs[layer.name],
                rtol=1e-5,
                atol=1e-6,
                err_msg=f"{layer.name} epoch {position}",
            )
        for key, value in weights.items():
            np.testing.assert_array_equal(streamed.array(key)[position], value, err_msg=key)
        logits = outputs["logits"].astype(np.float64)
        expected = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(
            streamed.array("samples/predictions")[position],
            expected / expected.sum(axis=1, keepdims=True),
            rtol=1e-5,
            atol=1e-6,
        )
    assert [name for name in os.listdir(run_dir) if name.startswith(".") or name.endswith(".partial")] == []


def test_float16_bundle_holds_the_same_activations_rounded(run_dir, streamed, tmp_path):
    path = keras_bundle.extract(run_dir, tmp_path / "half.bcnn.npz", activations_dtype="float16", log=quiet)
    half = load_bundle(path)
    assert half.version == streamed.version == 3  # extracted bundles carry importance (version 3)
    for layer in half.layers:
        stored = half.array(layer.activations)
        assert stored.dtype == np.float16
        # Not bit-equal: the two runs batch differently, and the last float32 bit can tip the float16 rounding.
        np.testing.assert_allclose(stored, streamed.array(layer.activations), rtol=1e-3, atol=1e-4)
    for key in ("samples/inputs", "weights/conv1/kernel"):
        np.testing.assert_array_equal(half.array(key), streamed.array(key))
    assert half.array("samples/predictions").dtype == np.float32
    assert os.path.getsize(path) < 0.8 * os.path.getsize(streamed.path)


def test_samples_per_class_from_the_samples_file(run_dir, tmp_path):
    bundle = load_bundle(keras_bundle.extract(run_dir, tmp_path / "picked.bcnn.npz", samples_per_class=1, log=quiet))
    assert bundle.array("samples/labels").tolist() == [0, 1, 2, 3]
    assert bundle.array("samples/source_index").tolist() == [0, 1, 2, 3]
    assert bundle.manifest["samples"]["preprocessing"]["samples"]["per_class"] == 1
    with pytest.raises(BlenderCNNError, match="holds 1 samples of class 3; 2 per class"):
        keras_bundle.extract(run_dir, tmp_path / "too_many.bcnn.npz", samples_per_class=2, log=quiet)


def test_image_files_through_the_cli(run_dir, tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, size=(30, 20, 3), dtype=np.uint8)
    png, jpeg = tmp_path / "photo.png", tmp_path / "photo.jpg"
    tf.io.write_file(str(png), tf.io.encode_png(pixels))
    tf.io.write_file(str(jpeg), tf.io.encode_jpeg(pixels))
    out = tmp_path / "images.bcnn.npz"
    assert extract_cli.main([str(run_dir), "--out", str(out), "--images", str(png), str(jpeg), "--float16"]) == 0
    bundle = load_bundle(out)
    assert bundle.sample_count == 2 and bundle.array("samples/labels").tolist() == [-1, -1]
    assert bundle.version == 3 and bundle.array("activations/conv1").dtype == np.float16
    recorded = bundle.manifest["samples"]["preprocessing"]
    assert recorded["files"] == ["photo.png", "photo.jpg"] and recorded["resize"]["to"] == [12, 12]
    assert "samples/source_index" not in bundle.manifest["samples"].values()
    outputs, _ = keras_outputs(run_dir / f"epoch_{EPOCHS - 1:03d}.keras", bundle.array("samples/inputs"))
    np.testing.assert_allclose(
        bundle.activations("hidden", epoch=-1, sample=1), outputs["hidden"][1], rtol=2e-3, atol=2e-3
    )  # float16 keeps about three digits


def test_cli_refuses_images_with_samples_per_class(run_dir, tmp_path, capsys):
    code = extract_cli.main(
        [str(run_dir), "--out", str(tmp_path / "x.bcnn.npz"), "--images", "a.png", "--samples-per-class", "2"]
    )
    assert code == 2 and "not both" in capsys.readouterr().err
