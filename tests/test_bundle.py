"""The bundle format on its own: numpy only, no TensorFlow, no bpy."""

import copy
import json
import zipfile

import numpy as np
import pytest
from bundle_files import EPOCHS, SAMPLES, expect_error, small_bundle, stamped, write_raw

from blender_cnn.core.bundle import FORMAT_NAME, FORMAT_VERSION, MANIFEST_KEY, load_bundle, write_bundle
from blender_cnn.core.errors import BlenderCNNError


def test_round_trip(tmp_path):
    manifest, arrays = small_bundle()
    path = write_bundle(tmp_path / "small.bcnn.npz", manifest, arrays)
    bundle = load_bundle(path)
    assert bundle.name == "small"
    assert bundle.epochs == EPOCHS and bundle.class_names == ["no", "yes"] and bundle.input_shape == (2, 2, 1)
    assert bundle.sample_count == SAMPLES
    assert [layer.name for layer in bundle.layers] == ["input", "flatten", "dense"]
    dense = bundle.layer("dense")
    assert dense.inputs == ("flatten",) and dense.output_shape == (2,) and dense.params == 10
    assert dense.config == {"units": 2, "activation": "softmax"}
    assert bundle.layer("input").is_spatial and not dense.is_spatial
    for key, value in arrays.items():
        np.testing.assert_array_equal(bundle.array(key), value)
    np.testing.assert_array_equal(bundle.weights("dense", epoch=1)["kernel"], arrays["weights/dense/kernel"][1])
    np.testing.assert_array_equal(bundle.activations("dense", epoch=-1, sample=1), arrays["activations/dense"][2, 1])
    # The input's activations have one epoch entry that serves every epoch.
    np.testing.assert_array_equal(bundle.activations("input", epoch=2, sample=0), arrays["samples/inputs"][0])
    assert np.isnan(bundle.metric("loss")[0]) and bundle.metric("accuracy") is None
    assert bundle.manifest["samples"]["preprocessing"] == {"scale": "none"}


def test_readable_with_numpy_alone(tmp_path):
    manifest, arrays = small_bundle()
    path = write_bundle(tmp_path / "small.bcnn.npz", manifest, arrays)
    with np.load(path, allow_pickle=False) as archive:
        stored = json.loads(archive[MANIFEST_KEY].tobytes().decode("utf-8"))
        kernel = archive["weights/dense/kernel"]
    assert stored["format"] == FORMAT_NAME and stored["version"] == 1
    assert kernel.dtype == np.float32 and kernel.shape == (3, 4, 2)


def test_lookup_errors_name_the_file(tmp_path):
    manifest, arrays = small_bundle()
    bundle = load_bundle(write_bundle(tmp_path / "small.bcnn.npz", manifest, arrays))
    with pytest.raises(BlenderCNNError, match="small.bcnn.npz: has no layer named 'conv9'"):
        bundle.layer("conv9")
    with pytest.raises(BlenderCNNError, match="has no epoch 7"):
        bundle.weights("dense", epoch=7)
    with pytest.raises(BlenderCNNError, match="sample 5 does not exist"):
        bundle.activations("dense", sample=5)


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nowhere.bcnn.npz", "no such file")


def test_not_a_zip(tmp_path):
    path = tmp_path / "text.bcnn.npz"
    path.write_text("just text")
    expect_error(path, "is not a network bundle")


def test_zip_but_not_npz(tmp_path):
    path = tmp_path / "plain.bcnn.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MANIFEST_KEY, "{}")
    expect_error(path, "'manifest.json'", "is not a .npy array")


def test_npz_without_manifest(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, data=np.zeros(3, dtype=np.float32))
    expect_error(path, "has no manifest.json")


def test_bad_json(tmp_path):
    path = tmp_path / "bad.bcnn.npz"
    np.savez(path, **{MANIFEST_KEY: np.frombuffer(b"{not json", dtype=np.uint8)})
    expect_error(path, "manifest.json is not valid JSON")


def test_newer_version(tmp_path):
    manifest, arrays = small_bundle()
    path = write_raw(tmp_path / "future.bcnn.npz", stamped(manifest, version=FORMAT_VERSION + 1), arrays)
    expect_error(path, f"is bundle version {FORMAT_VERSION + 1}", f"reads up to version {FORMAT_VERSION}")


def test_missing_array(tmp_path):
    manifest, arrays = small_bundle()
    del arrays["weights/dense/bias"]
    path = write_raw(tmp_path / "missing.bcnn.npz", stamped(manifest), arrays)
    expect_error(path, "layer 'dense' weight 'bias'", "'weights/dense/bias' is missing")


def test_wrong_shape(tmp_path):
    manifest, arrays = small_bundle()
    arrays["activations/dense"] = np.zeros((3, 2, 5), dtype=np.float32)
    path = write_raw(tmp_path / "shape.bcnn.npz", stamped(manifest), arrays)
    expect_error(path, "layer 'dense' activations", "shape (3, 2, 5)", "expected (3, 2, 2)")


@pytest.mark.parametrize(
    "key, dtype, expected",
    [
        ("weights/dense/kernel", np.float64, "float32"),
        ("samples/inputs", np.int32, "float32"),
        ("samples/labels", np.int64, "int32"),
    ],
)
def test_wrong_dtype(tmp_path, key, dtype, expected):
    manifest, arrays = small_bundle()
    arrays[key] = arrays[key].astype(dtype)
    path = write_raw(tmp_path / "dtype.bcnn.npz", stamped(manifest), arrays)
    expect_error(path, repr(key), f"dtype {np.dtype(dtype)}", f"expected {expected}")


def test_input_from_unknown_layer(tmp_path):
    manifest, arrays = small_bundle()
    manifest = copy.deepcopy(manifest)
    manifest["layers"][2]["inputs"] = ["conv7"]
    path = write_raw(tmp_path / "graph.bcnn.npz", stamped(manifest), arrays)
    expect_error(path, "layer 'dense' takes input from 'conv7'", "not a layer listed before it")


def test_layer_listed_after_its_consumer(tmp_path):
    manifest, arrays = small_bundle()
    manifest = copy.deepcopy(manifest)
    manifest["layers"][1], manifest["layers"][2] = manifest["layers"][2], manifest["layers"][1]
    path = write_raw(tmp_path / "order.bcnn.npz", stamped(manifest), arrays)
    expect_error(path, "takes input from 'flatten'")


def test_object_array_needing_pickle(tmp_path):
    manifest, arrays = small_bundle()
    arrays["extra"] = np.array([{"code": "print"}], dtype=object)
    path = write_raw(tmp_path / "pickle.bcnn.npz", stamped(manifest), arrays)
    expect_error(path, "without pickle")


def test_writer_refuses_what_readers_would_refuse(tmp_path):
    manifest, arrays = small_bundle()
    with pytest.raises(BlenderCNNError, match="holds Python objects"):
        write_bundle(tmp_path / "a.bcnn.npz", manifest, dict(arrays, extra=np.array([None], dtype=object)))
    with pytest.raises(BlenderCNNError, match="epochs' must be increasing integers"):
        write_bundle(tmp_path / "b.bcnn.npz", dict(manifest, epochs=[2, 1, 0]), arrays)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda m: m.pop("class_names"), "'class_names' is missing"),
        (lambda m: m.update(input_shape=[2, "2", 1]), "'input_shape' must be a list of positive integers"),
        (lambda m: m["layers"][2]["weights"][0].update(shape=4), "'shape' must be a list of positive integers"),
        (lambda m: m.update(metrics=["loss"]), "'metrics' must be a dict"),
        (lambda m: m["layers"].append(dict(m["layers"][1])), "layer 'flatten' appears twice"),
    ],
)
def test_malformed_manifest_fields(tmp_path, change, fragment):
    manifest, arrays = small_bundle()
    manifest = copy.deepcopy(manifest)
    change(manifest)
    path = write_raw(tmp_path / "fields.bcnn.npz", stamped(manifest), arrays)
    expect_error(path, fragment)
