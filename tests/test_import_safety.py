"""Bad or dangerous input: one clear BlenderCNNError naming the file and the fault, and no bundle left behind."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.extract import __main__ as extract_cli  # noqa: E402
from blender_cnn.extract.keras_bundle import extract  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore")]
QUIET = {"log": lambda message: None}


def dense_model(hidden=4, with_hidden=True, extra=False):
    inputs = keras.Input((3,), name="input")
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(inputs) if with_hidden else inputs
    x = keras.layers.Dense(2, activation="softmax", name="out")(x)
    if extra:
        x = keras.layers.Dense(2, activation="softmax", name="extra")(x)
    return keras.Model(inputs, x)


def lambda_model():
    inputs = keras.Input((3,), name="input")
    doubled = keras.layers.Lambda(lambda x: x * 2, name="my_lambda")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(doubled))


def write_samples(folder):
    np.savez(
        folder / "samples.npz",
        inputs=np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3),
        labels=np.array([0, 1], np.int32),
    )
    return folder / "samples.npz"


def assert_refused(source, match, **kwargs):
    out = source.parent / "out.bcnn.npz" if not source.is_dir() else source / "out.bcnn.npz"
    with pytest.raises(BlenderCNNError, match=match) as caught:
        extract(source, out, **QUIET, **kwargs)
    assert not out.exists() and not os.path.exists(str(out) + ".partial")
    return str(caught.value)


def test_lambda_layers_are_refused_unless_allowed(tmp_path):
    lambda_model().save(tmp_path / "model.keras")
    write_samples(tmp_path)
    message = assert_refused(tmp_path / "model.keras", "layer 'my_lambda' is a Lambda layer")
    assert message.startswith(str(tmp_path / "model.keras")) and "--allow-unsafe" in message

    bundle = load_bundle(extract(tmp_path / "model.keras", allow_unsafe=True, **QUIET))
    assert [layer.name for layer in bundle.layers] == ["input", "my_lambda", "out"]
    assert bundle.manifest["unrecognized_layers"] == ["my_lambda"]
    np.testing.assert_allclose(bundle.activations("my_lambda", sample=1), bundle.array("samples/inputs")[1] * 2)


def test_lambda_in_a_json_architecture_is_refused_and_the_cli_flag_allows_it(tmp_path, capsys):
    model = lambda_model()
    (tmp_path / "net.json").write_text(model.to_json())
    model.save_weights(tmp_path / "final.weights.h5")
    write_samples(tmp_path)
    assert extract_cli.main([str(tmp_path / "final.weights.h5"), "--architecture", str(tmp_path / "net.json")]) == 2
    assert "net.json: layer 'my_lambda' is a Lambda layer" in capsys.readouterr().err
    assert (
        extract_cli.main(
            [str(tmp_path / "final.weights.h5"), "--architecture", str(tmp_path / "net.json"), "--allow-unsafe"]
        )
        == 0
    )
    assert load_bundle(tmp_path / "final.bcnn.npz").manifest["unrecognized_layers"] == ["my_lambda"]


def test_custom_classes_are_refused_by_name(tmp_path):
    @keras.saving.register_keras_serializable(package="user_code")
    class Doubling(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2

    inputs = keras.Input((3,), name="input")
    keras.Model(inputs, Doubling(name="doubling")(inputs)).save(tmp_path / "model.keras")
    write_samples(tmp_path)
    assert_refused(tmp_path / "model.keras", r"layer 'doubling' is of class 'Doubling' from module")


def test_truncated_keras_and_h5_files(tmp_path):
    write_samples(tmp_path)
    dense_model().save(tmp_path / "model.keras")
    data = (tmp_path / "model.keras").read_bytes()
    (tmp_path / "model.keras").write_bytes(data[: len(data) // 2])
    assert_refused(tmp_path / "model.keras", "model.keras: is damaged or not a .keras file")

    dense_model().save(tmp_path / "legacy.h5")
    data = (tmp_path / "legacy.h5").read_bytes()
    (tmp_path / "legacy.h5").write_bytes(data[: len(data) // 2])
    assert_refused(tmp_path / "legacy.h5", "legacy.h5: is damaged or not an HDF5 file")


def test_weights_that_do_not_fit_the_architecture_name_the_variable(tmp_path):
    write_samples(tmp_path)
    dense_model(hidden=5).save_weights(tmp_path / "final.weights.h5")
    dense_model(hidden=4).save(tmp_path.parent / f"{tmp_path.name}_net.keras")
    assert_refused(
        tmp_path / "final.weights.h5",
        r"final.weights.h5: does not fit the architecture .*_net.keras: variable hidden/kernel has shape "
        r"\(3, 4\) in the network but \(3, 5\) in the file",
        architecture=tmp_path.parent / f"{tmp_path.name}_net.keras",
    )


def test_checkpoint_with_missing_variables_names_them(tmp_path):
    import tensorflow as tf

    write_samples(tmp_path)
    tf.train.Checkpoint(model=dense_model()).write(str(tmp_path / "ckpt-1"))
    (tmp_path / "net.json").write_text(dense_model(extra=True).to_json())
    message = assert_refused(
        tmp_path,
        r"ckpt-1: does not fit the network: the checkpoint's 'model' lacks the "
        r"variables extra/kernel, extra/bias",
    )
    assert "out/kernel" not in message
    (tmp_path / "net.json").write_text(dense_model(hidden=5).to_json())
    assert_refused(
        tmp_path,
        r"ckpt-1: does not fit the network: variable hidden/kernel has shape \(3, 5\) in the "
        r"network but \(3, 4\) in the checkpoint",
    )
    (tmp_path / "ckpt-2.index").write_bytes(b"not a checkpoint")
    assert_refused(
        tmp_path / "ckpt-2.index",
        "ckpt-2: cannot be read as a TensorFlow checkpoint",
        architecture=tmp_path / "net.json",
    )


def test_folder_without_checkpoints_or_samples_or_architecture(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    assert_refused(tmp_path, "holds no checkpoints")
    dense_model().save_weights(tmp_path / "final.weights.h5")
    assert_refused(tmp_path, "final.weights.h5: holds weights only; pass the network's architecture")
    dense_model().save(tmp_path / "model.keras")
    os.remove(tmp_path / "final.weights.h5")
    # Without samples the model is shown synthetic inputs (test_lone_model.py), but none has a class to pick by.
    assert_refused(
        tmp_path,
        "has no samples.npz beside it to take 2 per class from; pass the inputs to show with --samples FILE",
        samples_per_class=2,
    )


def test_unreadable_history_is_named(tmp_path):
    dense_model().save(tmp_path / "model.keras")
    write_samples(tmp_path)
    (tmp_path / "history.csv").write_text("loss,accuracy\nnot,numbers\n")
    assert_refused(tmp_path, "history.csv: is not a readable training history")
    os.remove(tmp_path / "history.csv")
    (tmp_path / "history.json").write_text("{broken")
    assert_refused(tmp_path, "history.json: is not a readable training history")
