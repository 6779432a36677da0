"""Networks of several inputs or several outputs: every input recorded with its samples, every output head with
its own probabilities, labels and class names (bundle version 4), computed by the numpy forward pass, and drawn:
each input as an input, each head with its classes' names and probability bars."""

import numpy as np
import pytest
from scene_readers import drawn_cells, label_texts

from blender_cnn.core.bundle import MULTI_IO_VERSION, load_bundle, write_bundle
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.forward import forward

EPOCHS = [0, 1]
SAMPLE_COUNT = 5


# ---------------------------------------------------------------- the format, numpy alone


def hand_written_bundle():
    """Inputs a (2,) and b (3,), joined, read by two heads: "kind" (2 classes, softmax) and "size" (3 units)."""
    rng = np.random.default_rng(1)
    a, b = rng.random((SAMPLE_COUNT, 2), dtype=np.float32), rng.random((SAMPLE_COUNT, 3), dtype=np.float32)
    kernels = {
        "kind": rng.normal(size=(2, 5, 2)).astype(np.float32),
        "size": rng.normal(size=(2, 5, 3)).astype(np.float32),
    }
    joined = np.concatenate([a, b], axis=1)
    outputs = {}
    for name, kernel in kernels.items():
        logits = np.einsum("si,eij->esj", joined, kernel)
        outputs[name] = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True) if name == "kind" else logits).astype(
            np.float32
        )

    def layer(name, kind, inputs, shape, weights=(), config=None):
        return {
            "name": name,
            "type": kind,
            "inputs": inputs,
            "output_shape": shape,
            "config": config or {},
            "weights": [{"name": "kernel", "array": f"weights/{name}/kernel", "shape": list(weights)}]
            if weights
            else [],
            "activations": f"activations/{name}",
        }

    manifest = {
        "name": "two by two",
        "input_shape": [2],
        "class_names": ["cat", "dog"],
        "epochs": EPOCHS,
        "layers": [
            layer("a", "InputLayer", [], [2]),
            layer("b", "InputLayer", [], [3]),
            layer("join", "Concatenate", ["a", "b"], [5], config={"axis": -1}),
            layer("kind", "Dense", ["join"], [2], (5, 2), {"units": 2, "activation": "softmax", "use_bias": False}),
            layer("size", "Dense", ["join"], [3], (5, 3), {"units": 3, "activation": "linear", "use_bias": False}),
        ],
        "samples": {"inputs": "samples/inputs", "labels": "samples/labels", "predictions": "samples/predictions"},
        "inputs": [
            {"layer": "a", "shape": [2], "array": "samples/inputs"},
            {"layer": "b", "shape": [3], "array": "samples/inputs/b"},
        ],
        "outputs": [
            {
                "layer": "kind",
                "class_names": ["cat", "dog"],
                "predictions": "samples/predictions",
                "labels": "samples/labels",
            },
            {
                "layer": "size",
                "class_names": ["S", "M", "L"],
                "predictions": "samples/predictions/size",
                "labels": "samples/labels/size",
            },
        ],
    }
    arrays = {
        "samples/inputs": a,
        "samples/inputs/b": b,
        "samples/labels": np.array([0, 1, 0, 1, -1], np.int32),
        "samples/labels/size": np.full(5, 2, np.int32),
        "samples/predictions": outputs["kind"],
        "samples/predictions/size": outputs["size"],
        "activations/a": a[np.newaxis],
        "activations/b": b[np.newaxis],
        "activations/join": np.repeat(joined[np.newaxis], len(EPOCHS), axis=0),
        "activations/kind": outputs["kind"],
        "activations/size": outputs["size"],
        "weights/kind/kernel": kernels["kind"],
        "weights/size/kernel": kernels["size"],
    }
    return manifest, arrays


def test_a_bundle_of_two_inputs_and_two_heads_is_version_4_and_lists_each(tmp_path):
    bundle = load_bundle(write_bundle(tmp_path / "multi.bcnn.npz", *hand_written_bundle()))
    assert bundle.version == MULTI_IO_VERSION == 4
    assert [(entry.layer, entry.shape) for entry in bundle.inputs] == [("a", (2,)), ("b", (3,))]
    assert [(head.layer, head.class_names) for head in bundle.outputs] == [
        ("kind", ("cat", "dog")),
        ("size", ("S", "M", "L")),
    ]
    assert bundle.array(bundle.outputs[1].labels).tolist() == [2] * SAMPLE_COUNT


def test_a_bundle_of_one_input_and_one_output_says_so_without_the_new_fields(tmp_path):
    from bundle_files import small_bundle

    bundle = load_bundle(write_bundle(tmp_path / "small.bcnn.npz", *small_bundle()))
    assert bundle.version == 1 and "inputs" not in bundle.manifest and "outputs" not in bundle.manifest
    assert [(entry.layer, entry.shape, entry.array) for entry in bundle.inputs] == [
        ("input", (2, 2, 1), "samples/inputs")
    ]
    assert [(head.layer, head.class_names, head.predictions, head.labels) for head in bundle.outputs] == [
        ("dense", ("no", "yes"), "samples/predictions", "samples/labels")
    ]


def test_the_numpy_forward_pass_takes_every_input_by_name_or_in_order(tmp_path):
    manifest, arrays = hand_written_bundle()
    bundle = load_bundle(write_bundle(tmp_path / "multi.bcnn.npz", manifest, arrays))
    a, b = arrays["samples/inputs"], arrays["samples/inputs/b"]
    for given in ({"a": a, "b": b}, [a, b]):
        outputs = forward(bundle, given, epoch=1)
        for head in bundle.outputs:
            np.testing.assert_allclose(outputs[head.layer], bundle.array(head.predictions)[1], rtol=1e-5, atol=1e-6)
    one = forward(bundle, {"a": a[3], "b": b[3]}, epoch=0)  # one sample, without its axis
    np.testing.assert_allclose(one["size"][0], arrays["activations/size"][0, 3], rtol=1e-5, atol=1e-6)
    with pytest.raises(BlenderCNNError, match=r"takes 2 inputs \(a, b\)"):
        forward(bundle, a)
    with pytest.raises(BlenderCNNError, match=r"one array per input layer .*\(a, b\); got a, c"):
        forward(bundle, {"a": a, "c": b})
    with pytest.raises(BlenderCNNError, match="inputs of 'b'.* takes \\(samples, 3\\)"):
        forward(bundle, [a, a])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, a: m.update(version=3), "uses the manifest's 'inputs', which needs bundle version 4"),
        (lambda m, a: m["inputs"].pop(), "must list every input layer (every layer without inputs: a, b) once"),
        (lambda m, a: m["inputs"].reverse(), "the first of the manifest's 'inputs' must be the input that"),
        (lambda m, a: m["outputs"][1].update(class_names=["S", "M"]), "output 'size': 2 class names for a layer of 3"),
        (lambda m, a: m["outputs"].reverse(), "the first of the manifest's 'outputs' must be the head that"),
        (lambda m, a: a.update({"samples/labels/size": np.full(5, 3, np.int32)}), "output 'size' labels must be"),
        (lambda m, a: a.update({"samples/inputs/b": np.zeros((4, 3), np.float32)}), "input 'b' samples: array"),
    ],
)
def test_a_bundle_whose_inputs_or_outputs_do_not_fit_its_layers_is_refused(tmp_path, change, message):
    from bundle_files import expect_error, stamped, write_raw

    manifest, arrays = hand_written_bundle()
    manifest = stamped(manifest, version=4)
    change(manifest, arrays)
    expect_error(write_raw(tmp_path / "broken.bcnn.npz", manifest, arrays), message)


# ---------------------------------------------------------------- extracted from Keras


def two_input_model(keras):
    image = keras.Input((8, 8, 1), name="image")
    meta = keras.Input((3,), name="meta")
    pixels = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(image)
    pixels = keras.layers.MaxPooling2D(name="pool")(pixels)
    pixels = keras.layers.Flatten(name="flat")(pixels)
    facts = keras.layers.Dense(4, activation="relu", name="meta_dense")(meta)
    joined = keras.layers.Concatenate(name="join")([pixels, facts])
    return keras.Model([image, meta], keras.layers.Dense(3, activation="softmax", name="digit")(joined))


def two_output_model(keras):
    image = keras.Input((8, 8, 1), name="image")
    features = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(image)
    features = keras.layers.Flatten(name="flat")(features)
    shared = keras.layers.Dense(8, activation="relu", name="shared")(features)
    digit = keras.layers.Dense(4, activation="softmax", name="digit")(shared)
    parity = keras.layers.Dense(2, activation="softmax", name="parity")(shared)
    return keras.Model(image, [digit, parity])


def sample_arrays():
    rng = np.random.default_rng(0)
    return rng.random((SAMPLE_COUNT, 8, 8, 1), dtype=np.float32), rng.random((SAMPLE_COUNT, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, keras):
    """``{kind: (model, bundle, log lines)}`` for the two-input and the two-output model, extracted once."""
    from blender_cnn.extract.keras_bundle import extract

    keras.utils.set_random_seed(3)
    folder = tmp_path_factory.mktemp("multi_io")
    images, facts = sample_arrays()
    labels = np.array([0, 1, 2, 3, 0])
    made = {}
    for kind, model, samples in (
        ("two inputs", two_input_model(keras), {"inputs/image": images, "inputs/meta": facts, "labels": labels % 3}),
        (
            "two outputs",
            two_output_model(keras),
            {
                "inputs": images,
                "labels": labels,
                "labels/parity": labels % 2,
                "class_names/parity": np.array(["even", "odd"]),
            },
        ),
    ):
        stem = kind.replace(" ", "_")
        model.save(folder / f"{stem}.keras")
        np.savez(folder / f"{stem}_samples.npz", **samples)
        lines = []
        path = extract(
            folder / f"{stem}.keras",
            folder / f"{stem}.bcnn.npz",
            samples=folder / f"{stem}_samples.npz",
            log=lines.append,
        )
        made[kind] = (model, load_bundle(path), lines)
    return made


def keras_outputs(keras, model, inputs):
    """``{layer name: output}`` of every layer of ``model`` but its inputs, computed by Keras."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    outputs = keras.Model(model.inputs, [layer.output for layer in layers]).predict(inputs, verbose=0)
    return {layer.name: values for layer, values in zip(layers, outputs)}


@pytest.mark.tf
def test_both_inputs_are_recorded_and_every_activation_is_keras(keras, extracted):
    model, bundle, _lines = extracted["two inputs"]
    images, facts = sample_arrays()
    assert bundle.version == 4 and [entry.layer for entry in bundle.inputs] == ["image", "meta"]
    assert bundle.input_shape == (8, 8, 1) and [layer.name for layer in bundle.layers[:2]] == ["image", "meta"]
    for entry, given in zip(bundle.inputs, (images, facts)):
        np.testing.assert_array_equal(bundle.array(entry.array), given)
        np.testing.assert_array_equal(bundle.layer_activations(entry.layer), given)
    expected = keras_outputs(keras, model, [images, facts])
    assert set(expected) == {layer.name for layer in bundle.layers if layer.inputs}
    for name, values in expected.items():
        np.testing.assert_allclose(bundle.layer_activations(name), values, rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(
        bundle.array("samples/predictions")[-1], model.predict([images, facts], verbose=0), rtol=1e-5, atol=1e-6
    )
    computed = forward(bundle, {"image": images, "meta": facts})
    for name, values in expected.items():
        np.testing.assert_allclose(computed[name], values, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.tf
def test_each_head_keeps_its_own_probabilities_labels_and_class_names(keras, extracted):
    model, bundle, lines = extracted["two outputs"]
    images, _facts = sample_arrays()
    digit, parity = model.predict(images, verbose=0)
    assert [(head.layer, head.class_names) for head in bundle.outputs] == [
        ("digit", ("0", "1", "2", "3")),
        ("parity", ("even", "odd")),
    ]
    assert bundle.class_names == ["0", "1", "2", "3"]  # the first head's, where one-output bundles keep theirs
    for head, predicted, labels in zip(bundle.outputs, (digit, parity), ([0, 1, 2, 3, 0], [0, 1, 0, 1, 0])):
        np.testing.assert_allclose(bundle.array(head.predictions)[-1], predicted, rtol=1e-5, atol=1e-6)
        assert bundle.array(head.labels).tolist() == labels
    expected = keras_outputs(keras, model, images)
    computed = forward(bundle, images)
    for name, values in expected.items():
        np.testing.assert_allclose(bundle.layer_activations(name), values, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(computed[name], values, rtol=1e-5, atol=1e-6, err_msg=name)
    # Importance is the first head's, and both the log and the bundle say so.
    assert bundle.importance_info["output"] == "digit"
    assert bundle.importance("shared").shape == (4 + 1, 8)  # the first head's 4 classes, and all of them
    assert any("importance is computed for the first, 'digit'" in line for line in lines)


@pytest.mark.tf
def test_samples_that_miss_an_input_are_refused_naming_the_arrays_needed(keras, tmp_path):
    from blender_cnn.extract.keras_bundle import extract

    two_input_model(keras).save(tmp_path / "two.keras")
    images, _facts = sample_arrays()
    np.savez(tmp_path / "samples.npz", inputs=images, labels=np.zeros(SAMPLE_COUNT, np.int32))
    with pytest.raises(
        BlenderCNNError,
        match=r"takes 2 inputs \(image, meta\): samples need one array per input, "
        r"inputs/image, inputs/meta",
    ):
        extract(tmp_path / "two.keras", samples=tmp_path / "samples.npz", log=lambda _line: None)


@pytest.mark.tf
def test_a_lone_model_of_two_inputs_is_shown_synthetic_inputs_in_both(keras, tmp_path):
    from blender_cnn.extract.keras_bundle import extract

    model = two_input_model(keras)
    model.save(tmp_path / "alone.keras")
    bundle = load_bundle(extract(tmp_path / "alone.keras", importance=False, log=lambda _line: None))
    assert bundle.manifest["samples"]["synthetic"] == "patterns and noise"
    images, facts = (bundle.array(entry.array) for entry in bundle.inputs)
    assert images.shape[1:] == (8, 8, 1) and facts.shape[1:] == (3,) and len(images) == len(facts) == 4
    expected = keras_outputs(keras, model, [images, facts])
    for name, values in expected.items():
        np.testing.assert_allclose(bundle.layer_activations(name), values, rtol=1e-5, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------- the scene


def probability_bars(network):
    """``(probability, bar centre)`` of every probability bar drawn."""
    from scene_readers import evaluated_geometry, read_attribute

    geometry = evaluated_geometry(network)  # the mesh lives as long as this
    mesh = geometry.mesh
    loop_start, material = np.empty(len(mesh.polygons), np.int32), np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_start", loop_start)
    mesh.polygons.foreach_get("material_index", material)
    corner_vertex = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corner_vertex)
    slots = [i for i, m in enumerate(mesh.materials) if m and m.name.startswith("BCNN Highlight")]
    first = corner_vertex[loop_start]
    bars = np.isin(material, slots) & (read_attribute(mesh, "overlay")[first] == 5)
    positions = read_attribute(mesh, "position")
    return read_attribute(mesh, "probability")[first[bars]], positions[first[bars]]


@pytest.mark.tf
@pytest.mark.bpy
def test_the_scene_draws_both_inputs_with_their_samples(blender, extracted):
    from blender_cnn.scene.network import build_network

    _model, bundle, _lines = extracted["two inputs"]
    network = build_network(bundle, sample=2)
    _centres, cells = drawn_cells(network)
    for entry in bundle.inputs:
        drawn = cells["activation"][cells["layer"] == bundle.layer(entry.layer).index]
        values = bundle.array(entry.array)[2]
        assert len(drawn) == values.size
        np.testing.assert_allclose(np.sort(drawn), np.sort(values.ravel()), rtol=1e-6)
        assert any(text.startswith(entry.layer + "\n") for text in label_texts(network)), entry.layer


@pytest.mark.tf
@pytest.mark.bpy
def test_the_scene_labels_each_head_with_its_classes_and_probabilities(blender, extracted):
    from blender_cnn.scene.network import build_network

    _model, bundle, _lines = extracted["two outputs"]
    network = build_network(bundle, sample=1)
    texts = label_texts(network)
    for name in ("0", "1", "2", "3", "even", "odd"):
        assert texts.count(name) == 1, (name, texts)
    probabilities, where = probability_bars(network)
    centres, cells = drawn_cells(network)
    neurons = [centres[cells["layer"] == bundle.layer(head.layer).index] for head in bundle.outputs]
    assert [len(each) for each in neurons] == [len(head.class_names) for head in bundle.outputs] == [4, 2]
    # Each head's bars stand by its own neurons and are as long as its own probabilities.
    nearest = np.array([np.argmin([np.linalg.norm(each - point, axis=1).min() for each in neurons]) for point in where])
    for position, head in enumerate(bundle.outputs):
        np.testing.assert_allclose(
            np.sort(probabilities[nearest == position]), np.sort(bundle.array(head.predictions)[-1, 1]), rtol=1e-5
        )


@pytest.mark.tf
@pytest.mark.bpy
def test_a_custom_input_to_both_inputs_is_computed_shown_and_inspected(blender, extracted):
    from blender_cnn.scene.inspection import inspect_network_cell
    from blender_cnn.scene.network import build_network, show_input

    _model, bundle, _lines = extracted["two inputs"]
    network = build_network(bundle)
    rng = np.random.default_rng(7)
    given = {"image": rng.random((8, 8, 1), dtype=np.float32), "meta": rng.random(3, dtype=np.float32)}
    shown = show_input(network, given, label="mine")
    expected = forward(bundle, given)
    np.testing.assert_allclose(shown["digit"], expected["digit"][0], rtol=1e-6)
    _centres, cells = drawn_cells(network)
    drawn = cells["activation"][cells["layer"] == bundle.layer("meta").index]
    np.testing.assert_allclose(np.sort(drawn), np.sort(given["meta"]), rtol=1e-6)
    inspection = inspect_network_cell(network, "meta_dense", 1)
    assert "mine" in inspection.text()
    np.testing.assert_allclose(inspection.value, expected["meta_dense"][0, 1], rtol=1e-5, atol=1e-6)


@pytest.mark.tf
@pytest.mark.bpy
def test_a_lone_model_of_two_inputs_says_synthetic_input_under_each(blender, keras, tmp_path):
    from blender_cnn.extract.keras_bundle import extract
    from blender_cnn.scene.network import build_network

    two_input_model(keras).save(tmp_path / "alone.keras")
    network = build_network(extract(tmp_path / "alone.keras", importance=False, log=lambda _line: None))
    marked = sorted(
        text.split("\n")[0] + ": " + text.split("\n")[-1] for text in label_texts(network) if "synthetic input" in text
    )
    assert marked == ["image: synthetic input (patterns)", "meta: synthetic input (noise)"], label_texts(network)
