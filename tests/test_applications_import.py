"""Networks of keras.applications, untrained and at tiny inputs, imported as a user would and held against Keras."""

import json
import os
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.core.forward import forward  # noqa: E402
from blender_cnn.core.layer_specs import OPERATION_TYPE_PREFIX, is_known_layer_type  # noqa: E402
from blender_cnn.extract.keras_bundle import extract  # noqa: E402

pytestmark = [
    pytest.mark.tf,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore"),
]  # Keras' and TensorFlow's own deprecation chatter
QUIET = {"log": lambda message: None}
CLASSES = 10
# Relative to the largest value of a layer's output: untrained networks' outputs reach the thousands.
TOLERANCE = 1e-4
# Each network covers what the others do not: Add skips, operations recorded from arithmetic (x + 3),
# Multiply, Concatenate, layers Keras ships outside keras.layers, a nested Sequential.
# InceptionResNetV2 (CustomScaleLayer) takes 80 s here; test_custom_scale_layer stands in for it.
ARCHITECTURES = {
    "ResNet50": dict(size=32, forward=True),  # Add
    "MobileNetV2": dict(size=32, forward=True, alpha=0.35),  # Add
    "MobileNetV3Small": dict(size=32, forward=True, alpha=0.75),  # ops.Add, ops.Multiply, Multiply
    "DenseNet121": dict(size=32, forward=False),  # Concatenate
    # LayerScale, operations on two tensors recorded as Add, a nested Sequential. Its importance (ten
    # backward passes for one sample of one class) takes 17 s; the other networks cover importance.
    "ConvNeXtTiny": dict(size=32, forward=True, importance=False),
}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def imported(request, tmp_path_factory):
    """One architecture saved as .keras, imported with one sample, and Keras' outputs of every step for it."""
    name = request.param
    settings = dict(ARCHITECTURES[name])
    size, check_forward, importance = settings.pop("size"), settings.pop("forward"), settings.pop("importance", True)
    folder = tmp_path_factory.mktemp(name)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=CLASSES, **settings)
    model.save(folder / f"{name}.keras")
    inputs = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    np.savez(folder / "samples.npz", inputs=inputs, labels=np.zeros(1, np.int32))
    bundle = load_bundle(extract(folder / f"{name}.keras", importance=importance, **QUIET))
    # One predict of the model's graph with every step's output as an output; its last is the model's output.
    steps = model.operations[1:]
    outputs = keras.Model(model.inputs, [step.output for step in steps]).predict(inputs, verbose=0)
    yield SimpleNamespace(
        model=model,
        bundle=bundle,
        inputs=inputs,
        forward=check_forward,
        expected={step.name: values for step, values in zip(steps, outputs)},
        config=json.loads(zipfile.ZipFile(folder / f"{name}.keras").read("config.json")),
    )
    keras.backend.clear_session()


def steps_of(model):
    """A model's layers and keras.ops operations, in the order Keras keeps them."""
    return model.layers if isinstance(model, keras.Sequential) else model.operations


def flat_names(model, prefix=""):
    """The names the bundle gives the model's layers and operations: nested models opened up as ``model/layer``."""
    names = []
    for step in steps_of(model):
        if isinstance(step, keras.Model):
            names += flat_names(step, f"{prefix}{step.name}/")
        elif not (prefix and isinstance(step, keras.layers.InputLayer)):
            names.append(prefix + step.name)
    return names


def flat_output_name(model, name):
    """The bundle's name of the layer whose output is that of ``model``'s step ``name``."""
    step = next(step for step in steps_of(model) if step.name == name)
    return f"{name}/{flat_output_name(step, step.layers[-1].name)}" if isinstance(step, keras.Model) else name


def tensor_sources(value):
    """Names of the steps whose outputs a call's saved arguments take, in order."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [value["config"]["keras_history"][0]]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [name for item in items for name in tensor_sources(item)]


def relative_error(computed, expected):
    computed, expected = np.asarray(computed, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(computed - expected)) / max(np.max(np.abs(expected)), 1.0))


def test_bundle_has_every_layer_of_the_model(imported):
    bundle, model = imported.bundle, imported.model
    names = [layer.name for layer in bundle.layers]
    assert len(names) == len(set(names)) == len(flat_names(model))
    assert sorted(names) == sorted(flat_names(model))
    assert sum(layer.params for layer in bundle.layers) == model.count_params()
    for step in imported.config["config"]["layers"]:
        if step["class_name"] in ("Functional", "Sequential"):
            continue
        layer_type = bundle.layer(step["name"]).type
        if step["module"].startswith("keras.src.ops."):  # recorded as the merge layer it amounts to, or as itself
            assert layer_type in (step["class_name"], OPERATION_TYPE_PREFIX + step["class_name"]), step["name"]
        else:
            assert layer_type == step["class_name"], step["name"]
    unrecognized = bundle.manifest["unrecognized_layers"]
    assert unrecognized == [layer.name for layer in bundle.layers[1:] if not is_known_layer_type(layer.type)]


def test_layers_with_several_inputs_record_them_all(imported):
    bundle, model = imported.bundle, imported.model
    merges = 0
    for step in imported.config["config"]["layers"]:
        sources = tensor_sources(step["inbound_nodes"][0]) if step["inbound_nodes"] else []
        if len(sources) < 2:
            continue
        merges += 1
        layer = bundle.layer(step["name"])
        assert list(layer.inputs) == [flat_output_name(model, source) for source in sources], step["name"]
        if step["class_name"] in ("Add", "Concatenate", "Multiply"):  # layers, or operations on two tensors
            assert layer.type == step["class_name"], step["name"]
    assert merges > 0


def test_output_matches_model_predict(imported):
    bundle, model = imported.bundle, imported.model
    np.testing.assert_array_equal(bundle.array("samples/inputs"), imported.inputs)
    expected = imported.expected[model.operations[-1].name]
    assert relative_error(bundle.layer_activations(bundle.layers[-1].name), expected) < TOLERANCE
    np.testing.assert_allclose(bundle.array("samples/predictions")[0], expected, atol=1e-5)


def test_every_layer_output_matches_keras(imported):
    for step_name, expected in imported.expected.items():
        name = flat_output_name(imported.model, step_name)
        assert relative_error(imported.bundle.layer_activations(name), expected) < TOLERANCE, name


def test_numpy_forward_computes_it_as_tensorflow_does(imported):
    if not imported.forward:
        pytest.skip("slow in numpy at this depth; the other networks cover its layer types")
    bundle = imported.bundle
    computed = forward(bundle, bundle.array("samples/inputs"))
    for layer in bundle.layers[1:]:
        assert relative_error(computed[layer.name], bundle.layer_activations(layer.name)) < TOLERANCE, layer.name


def test_custom_scale_layer(tmp_path):
    # InceptionResNetV2's residual scaling, in a network small enough to test: it loads in safe mode, records
    # both its inputs and is computed by the numpy forward pass.
    shipped = pytest.importorskip("keras.src.applications.inception_resnet_v2")
    inputs = keras.Input((4, 4, 2), name="input")
    branch = keras.layers.Conv2D(2, 3, padding="same", name="branch")(inputs)
    scaled = shipped.CustomScaleLayer(0.17, name="scaled")([inputs, branch])
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="out")(keras.layers.Flatten(name="flat")(scaled))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "net.keras")
    samples = np.random.default_rng(1).normal(size=(2, 4, 4, 2)).astype(np.float32)
    np.savez(tmp_path / "samples.npz", inputs=samples, labels=np.arange(2, dtype=np.int32))
    bundle = load_bundle(extract(tmp_path / "net.keras", **QUIET))
    assert bundle.layer("scaled").inputs == ("input", "branch")
    assert bundle.manifest["unrecognized_layers"] == ["scaled"]
    np.testing.assert_allclose(bundle.layer_activations("out"), model.predict(samples, verbose=0), atol=1e-6)
    computed = forward(bundle, samples)
    for layer in bundle.layers[1:]:
        assert relative_error(computed[layer.name], bundle.layer_activations(layer.name)) < TOLERANCE, layer.name


def test_legacy_h5_with_shipped_layers_is_one_clear_error(tmp_path):
    # Keras writes no module into .h5 files, so LayerScale cannot be told from a user's own class there.
    keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=CLASSES).save(tmp_path / "net.h5")
    np.savez(tmp_path / "samples.npz", inputs=np.zeros((1, 32, 32, 3), np.float32), labels=np.zeros(1, np.int32))
    with pytest.raises(BlenderCNNError) as caught:
        extract(tmp_path / "net.h5", **QUIET)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "net.h5") + ": layer ") and "\n" not in message
    assert "'LayerScale', which Keras ships in keras.src.applications.convnext" in message
    assert "Save the model as .keras" in message and "allow-unsafe" not in message


def test_classes_keras_does_not_ship_are_refused_by_name(tmp_path):
    # A file may name a Keras module; the class must still be one Keras defines there.
    inputs = keras.Input((3,), name="input")
    keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs)).save(tmp_path / "net.keras")
    with zipfile.ZipFile(tmp_path / "net.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    layer = config["config"]["layers"][1]
    layer.update(module="keras.src.applications.convnext", class_name="NoSuchLayer", registered_name="NoSuchLayer")
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "net.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    np.savez(tmp_path / "samples.npz", inputs=np.zeros((1, 3), np.float32), labels=np.zeros(1, np.int32))
    with pytest.raises(
        BlenderCNNError,
        match=r"net.keras: layer 'out' is of class 'NoSuchLayer', which is not a "
        r"Keras layer; its code is not in the file; it was not loaded\.$",
    ):
        extract(tmp_path / "net.keras", **QUIET)
