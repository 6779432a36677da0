"""A model that comes alone (no samples.npz, no --samples, no --images) is shown synthetic inputs: test
patterns for image-shaped inputs, seeded noise for others. The bundle says so (``samples.synthetic``), the
activations are Keras' own for those inputs, and the scene's input label says "synthetic input"."""

import os
import time

import numpy as np
import pytest
from scene_readers import label_texts

from blender_cnn.core.bundle import load_bundle
from blender_cnn.extract.keras_bundle import extract
from blender_cnn.extract.samples import SYNTHETIC_PATTERNS, synthetic_samples

pytestmark = pytest.mark.tf


def tiny_cnn(keras):
    return keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )


def tiny_branching_cnn(keras):
    """Not a chain: the scene shows units and their labels from the graph plan."""
    inputs = keras.Input((10, 10, 1), name="pixels")
    left = keras.layers.Conv2D(2, 3, padding="same", name="left")(inputs)
    right = keras.layers.Conv2D(2, 1, name="right")(inputs)
    merged = keras.layers.Add(name="merge")([left, right])
    flat = keras.layers.Flatten(name="flat")(merged)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="out")(flat))


def tiny_dense(keras):
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, activation="relu", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )


def assert_activations_are_keras(keras, model, bundle):
    inputs = bundle.array(bundle.manifest["samples"]["inputs"])
    outputs = keras.Model(model.inputs, [layer.output for layer in model.layers]).predict(inputs, verbose=0)
    for layer, expected in zip(model.layers, outputs):
        np.testing.assert_allclose(
            bundle.array(bundle.layer(layer.name).activations)[-1], expected, rtol=1e-5, atol=1e-6, err_msg=layer.name
        )


@pytest.mark.parametrize(
    ("make", "kind", "count"), [(tiny_cnn, "patterns", len(SYNTHETIC_PATTERNS)), (tiny_dense, "noise", 4)]
)
def test_a_lone_model_is_shown_synthetic_inputs_and_its_activations_are_keras(keras, tmp_path, make, kind, count):
    model = make(keras)
    model.save(tmp_path / "alone.keras")
    lines = []
    bundle = load_bundle(extract(tmp_path / "alone.keras", log=lines.append))

    samples = bundle.manifest["samples"]
    assert samples["synthetic"] == kind and samples["preprocessing"]["source"] == "synthetic"
    assert samples["dataset"] is None
    assert bundle.sample_count == count
    assert (bundle.array(samples["labels"]) == -1).all()
    said = [line for line in lines if "synthetic inputs" in line]
    assert len(said) == 1 and kind in said[0] and "--samples" in said[0]
    assert_activations_are_keras(keras, model, bundle)


def test_synthetic_inputs_are_patterns_in_the_runs_value_range():
    samples = synthetic_samples((8, 8, 1), {"range": [-1, 1]})
    assert samples.preprocessing["samples"] == list(SYNTHETIC_PATTERNS)
    assert samples.inputs.min() == -1.0 and samples.inputs.max() == 1.0
    bars = samples.inputs[SYNTHETIC_PATTERNS.index("vertical bars"), :, :, 0]
    assert (bars == bars[0]).all() and len(np.unique(bars[0])) == 2  # columns of two values, the same in every row
    np.testing.assert_array_equal(synthetic_samples((8, 8, 1)).inputs, synthetic_samples((8, 8, 1)).inputs)
    assert synthetic_samples((None, None, 3)).inputs.shape == (len(SYNTHETIC_PATTERNS), 64, 64, 3)


def test_a_samples_file_put_beside_the_model_later_replaces_the_synthetic_inputs(keras, tmp_path):
    tiny_dense(keras).save(tmp_path / "alone.keras")
    out = tmp_path / "alone.bcnn.npz"
    assert load_bundle(extract(tmp_path / "alone.keras", out, log=lambda _line: None)).manifest["samples"]["synthetic"]
    np.savez(tmp_path / "samples.npz", inputs=np.ones((2, 6), np.float32), labels=np.array([0, 1]))
    past = time.time() - 3600  # older than the bundle, as a file copied with its date kept would be
    os.utime(tmp_path / "samples.npz", (past, past))
    bundle = load_bundle(extract(tmp_path / "alone.keras", out, log=lambda _line: None))
    assert "synthetic" not in bundle.manifest["samples"] and bundle.sample_count == 2


@pytest.mark.bpy
@pytest.mark.parametrize("make", [tiny_cnn, tiny_branching_cnn])
def test_the_scene_of_a_lone_model_labels_its_input_synthetic(blender, keras, tmp_path, bundle_folder, make):
    model = make(keras)
    model.save(tmp_path / "alone.keras")
    assert blender.ops.bcnn.import_checkpoint(
        filepath=str(tmp_path / "alone.keras"), frame_camera=False, importance=False
    ) == {"FINISHED"}
    network = blender.context.view_layer.objects.active
    bundle = load_bundle(network["blender_cnn_bundle"])
    assert bundle.manifest["samples"]["synthetic"] == "patterns"
    marked = [text for text in label_texts(network) if "synthetic input (patterns)" in text]
    assert len(marked) == 1 and marked[0].startswith(bundle.layers[0].name), label_texts(network)
