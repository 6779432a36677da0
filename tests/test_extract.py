"""Train a tiny branching network, extract it, and hold the bundle against Keras itself."""

import json
import os

import numpy as np
import pytest
from bundle_files import tiny_digits_design

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.extract import __main__ as extract_cli  # noqa: E402
from blender_cnn.extract.datasets import load_dataset, resize_bilinear  # noqa: E402
from blender_cnn.extract.keras_bundle import extract_run  # noqa: E402
from blender_cnn.extract.keras_models import build_model  # noqa: E402
from blender_cnn.extract.training import train_run  # noqa: E402

# Keras' own checkpoint saving trips this numpy 2 warning; it is not ours to fix.
pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]
EPOCHS = 2
TINY_PRESET = tiny_digits_design(
    [
        {"type": "Conv2D", "name": "conv1", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "name": "conv2", "filters": 4, "kernel_size": 3, "padding": "same"},
        # A skip connection, so the graph is not a chain: add takes conv1 and conv2.
        {"type": "Add", "name": "add", "inputs": ["conv1", "conv2"]},
        {"type": "MaxPooling2D", "name": "pool", "pool_size": 2},
        {"type": "Flatten", "name": "flatten"},
        {"type": "Dense", "name": "output", "units": 10, "activation": "softmax"},
    ],
    epochs=EPOCHS,
    batch_size=64,
    learning_rate=0.01,
    validation_split=0.2,
    seed=3,
    samples_per_class=1,
)
EXPECTED_GRAPH = {
    "input": ("InputLayer", [], [8, 8, 1]),
    "conv1": ("Conv2D", ["input"], [8, 8, 4]),
    "conv2": ("Conv2D", ["conv1"], [8, 8, 4]),
    "add": ("Add", ["conv1", "conv2"], [8, 8, 4]),
    "pool": ("MaxPooling2D", ["add"], [4, 4, 4]),
    "flatten": ("Flatten", ["pool"], [64]),
    "output": ("Dense", ["flatten"], [10]),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("extract")
    preset_path = folder / "tiny.json"
    preset_path.write_text(json.dumps(TINY_PRESET))
    run_dir = folder / "run"
    train_run(preset_path, run_dir, log=lambda message: None)
    bundle_path = extract_run(run_dir, folder / "tiny.bcnn.npz", log=lambda message: None)
    return preset_path, run_dir, load_bundle(bundle_path)


def test_run_folder_holds_every_epoch(run):
    _, run_dir, bundle = run
    names = set(os.listdir(run_dir))
    assert {f"epoch_{epoch:03d}.keras" for epoch in range(EPOCHS + 1)} <= names
    assert {"history.csv", "history.json", "run.json", "samples.npz"} <= names
    assert bundle.epochs == list(range(EPOCHS + 1))
    assert bundle.sample_count == 10
    assert bundle.array("samples/labels").tolist() == list(range(10))


def test_layer_graph_follows_the_keras_graph(run):
    _, run_dir, bundle = run
    model = keras.saving.load_model(run_dir / "epoch_000.keras", safe_mode=True, compile=False)
    got = {layer.name: (layer.type, list(layer.inputs), list(layer.output_shape)) for layer in bundle.layers}
    assert got == EXPECTED_GRAPH
    assert bundle.layers[0].name == "input"
    for layer in bundle.layers[1:]:
        assert layer.params == model.get_layer(layer.name).count_params()
    assert sum(layer.params for layer in bundle.layers) == model.count_params()
    conv1 = bundle.layer("conv1").config
    assert (conv1["filters"], conv1["kernel_size"], conv1["padding"], conv1["activation"]) == (
        4,
        [3, 3],
        "same",
        "relu",
    )
    assert bundle.layer("pool").config["pool_size"] == [2, 2]
    assert bundle.layer("output").config["units"] == 10
    json.dumps(bundle.manifest, allow_nan=False)


@pytest.mark.parametrize("epoch", [0, EPOCHS])
def test_activations_and_weights_equal_keras(run, epoch):
    _, run_dir, bundle = run
    model = keras.saving.load_model(run_dir / f"epoch_{epoch:03d}.keras", safe_mode=True, compile=False)
    inputs = bundle.array("samples/inputs")
    np.testing.assert_array_equal(bundle.activations("input", epoch=epoch, sample=3), inputs[3])
    for layer in bundle.layers[1:]:
        keras_layer = model.get_layer(layer.name)
        expected = keras.Model(model.inputs, keras_layer.output).predict(inputs, verbose=0)
        stored = bundle.array(layer.activations)[bundle.epoch_index(epoch)]
        assert stored.dtype == np.float32 and stored.flags.c_contiguous
        assert np.max(np.abs(stored - expected)) < 1e-5, layer.name
        # The listed inputs are the real ones: the layer applied to them gives its stored output.
        sources = [
            bundle.array(bundle.layer(name).activations)[-1 if name == "input" else bundle.epoch_index(epoch)]
            for name in layer.inputs
        ]
        recomputed = np.asarray(keras_layer(sources[0] if len(sources) == 1 else sources))
        assert np.max(np.abs(recomputed - stored)) < 1e-5, layer.name
        stored_weights = bundle.weights(layer.name, epoch=epoch)
        assert list(stored_weights) == [variable.name for variable in keras_layer.weights]
        for variable in keras_layer.weights:
            np.testing.assert_array_equal(stored_weights[variable.name], variable.numpy())
    np.testing.assert_allclose(
        bundle.array("samples/predictions")[bundle.epoch_index(epoch)], model.predict(inputs, verbose=0), atol=1e-6
    )


def test_metrics_come_from_the_history(run):
    _, run_dir, bundle = run
    history = json.loads((run_dir / "history.json").read_text())
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(bundle.metric(name), history[name], rtol=1e-6)
    assert bundle.metric("val_accuracy")[-1] > bundle.metric("val_accuracy")[0]


def test_second_runs_reuse_the_files(run, tmp_path):
    preset_path, run_dir, bundle = run
    stamps = {name: os.path.getmtime(run_dir / name) for name in os.listdir(run_dir)}
    messages = []
    train_run(preset_path, run_dir, log=messages.append)
    extract_run(run_dir, bundle.path, log=messages.append)
    assert all(message.startswith("reusing") for message in messages)
    assert stamps == {name: os.path.getmtime(run_dir / name) for name in os.listdir(run_dir)}


def test_bad_preset_is_a_user_error(tmp_path):
    bad = dict(TINY_PRESET, layers=[{"type": "NoSuchLayer", "name": "x"}])
    with pytest.raises(BlenderCNNError, match="NoSuchLayer"):
        build_model(bad)
    lambda_preset = dict(TINY_PRESET, layers=[{"type": "Lambda", "name": "x", "function": "print"}])
    with pytest.raises(BlenderCNNError, match="Lambda"):
        build_model(lambda_preset)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(BlenderCNNError, match="broken.json"):
        train_run(broken, tmp_path / "run")


def test_cli_reports_user_errors_with_exit_code_2(tmp_path, capsys):
    assert extract_cli.main([str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert extract_cli.main([str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err


def test_numpy_resize_matches_tensorflow():
    import tensorflow as tf

    images = np.random.default_rng(0).random((3, 8, 8), dtype=np.float32)
    for size in ((16, 16), (12, 20), (5, 5)):
        expected = tf.image.resize(images[..., None], size, method="bilinear", antialias=False).numpy()[..., 0]
        np.testing.assert_allclose(resize_bilinear(images, *size), expected, atol=1e-6)


def test_dataset_split_is_deterministic():
    first = load_dataset("digits", [16, 16, 1], 0.2, seed=7)
    second = load_dataset("digits", [16, 16, 1], 0.2, seed=7)
    np.testing.assert_array_equal(first.val_source_index, second.val_source_index)
    assert first.x_train.shape[1:] == (16, 16, 1) and first.x_train.dtype == np.float32
    assert 0.0 <= first.x_train.min() and first.x_train.max() <= 1.0
    assert first.preprocessing["resize"]["to"] == [16, 16]


def test_checkpoints_that_carry_code_are_refused(tmp_path):
    inputs = keras.Input((2,), name="input")
    outputs = keras.layers.Lambda(lambda x: x * 2, name="double")(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "epoch_000.keras")
    np.savez(tmp_path / "samples.npz", inputs=np.zeros((1, 2), np.float32), labels=np.zeros(1, np.int32))
    with pytest.raises(BlenderCNNError, match="epoch_000.keras: layer 'double' is a Lambda layer"):
        extract_run(tmp_path, log=lambda message: None)
    (tmp_path / "epoch_000.keras").write_text("not a model")
    with pytest.raises(BlenderCNNError, match="epoch_000.keras: is damaged or not a .keras file"):
        extract_run(tmp_path, log=lambda message: None)
