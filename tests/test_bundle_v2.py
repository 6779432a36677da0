"""Bundle format version 2: float16 activations, unlabelled samples, the streaming writer. numpy only."""

import json
import zipfile

import numpy as np
import pytest
from bundle_files import expect_error, small_bundle, stamped, write_raw

from blender_cnn.core.bundle import MANIFEST_KEY, BundleWriter, load_bundle, write_bundle
from blender_cnn.core.errors import BlenderCNNError

ACTIVATION_KEYS = ("activations/input", "activations/flatten", "activations/dense")


def as_float16(arrays):
    return {key: value.astype(np.float16) if key in ACTIVATION_KEYS else value for key, value in arrays.items()}


def test_float16_activations_round_trip(tmp_path):
    manifest, arrays = small_bundle()
    arrays = as_float16(arrays)
    bundle = load_bundle(write_bundle(tmp_path / "half.bcnn.npz", manifest, arrays))
    assert bundle.version == 2
    for key in ACTIVATION_KEYS:
        assert bundle.array(key).dtype == np.float16  # array() gives what is stored
        np.testing.assert_array_equal(bundle.array(key), arrays[key])
    dense = bundle.activations("dense", epoch=1, sample=1)
    assert dense.dtype == np.float32  # activations() always gives float32
    np.testing.assert_array_equal(dense, arrays["activations/dense"][1, 1].astype(np.float32))
    assert bundle.weights("dense")["kernel"].dtype == np.float32
    with np.load(tmp_path / "half.bcnn.npz", allow_pickle=False) as archive:  # still a plain .npz
        assert json.loads(archive[MANIFEST_KEY].tobytes())["version"] == 2
        assert archive["activations/dense"].dtype == np.float16


def test_float32_bundles_stay_version_1_for_older_readers(tmp_path):
    manifest, arrays = small_bundle()
    bundle = load_bundle(write_bundle(tmp_path / "full.bcnn.npz", manifest, arrays))
    assert bundle.version == 1


def test_version_1_files_written_by_numpy_still_load(tmp_path):
    manifest, arrays = small_bundle()
    path = write_raw(tmp_path / "old.bcnn.npz", stamped(manifest, version=1), arrays)
    bundle = load_bundle(path)
    assert bundle.version == 1
    np.testing.assert_array_equal(bundle.activations("dense", epoch=2, sample=0), arrays["activations/dense"][2, 0])


def test_float16_in_a_version_1_file_is_refused(tmp_path):
    manifest, arrays = small_bundle()
    path = write_raw(tmp_path / "mixed.bcnn.npz", stamped(manifest, version=1), as_float16(arrays))
    expect_error(
        path,
        "layer 'input' activations",
        "dtype float16, expected float32",
        "float16 activations need bundle version 2",
    )


@pytest.mark.parametrize("key", ["weights/dense/kernel", "samples/inputs", "samples/predictions", "metrics/loss"])
def test_float16_only_for_activations(tmp_path, key):
    manifest, arrays = small_bundle()
    arrays[key] = arrays[key].astype(np.float16)
    path = write_raw(tmp_path / "weights.bcnn.npz", stamped(manifest, version=2), arrays)
    expect_error(path, repr(key), "dtype float16, expected float32")
    with pytest.raises(BlenderCNNError, match="expected float32"):
        write_bundle(tmp_path / "written.bcnn.npz", manifest, arrays)


def test_float64_activations_are_refused_in_version_2(tmp_path):
    manifest, arrays = small_bundle()
    arrays["activations/dense"] = arrays["activations/dense"].astype(np.float64)
    path = write_raw(tmp_path / "wide.bcnn.npz", stamped(manifest, version=2), arrays)
    expect_error(path, "'activations/dense'", "dtype float64, expected float32 or float16")


def test_unlabelled_samples_need_version_2(tmp_path):
    manifest, arrays = small_bundle()
    arrays["samples/labels"] = np.array([-1, 1], dtype=np.int32)
    bundle = load_bundle(write_bundle(tmp_path / "images.bcnn.npz", manifest, arrays))
    assert bundle.version == 2 and bundle.array("samples/labels").tolist() == [-1, 1]
    path = write_raw(tmp_path / "old.bcnn.npz", stamped(manifest, version=1), arrays)
    expect_error(path, "samples labels must be class indices from 0 to 1", "from -1 to 1")


@pytest.mark.parametrize("labels", [[-2, 0], [0, 2]])
def test_labels_out_of_range(tmp_path, labels):
    manifest, arrays = small_bundle()
    arrays["samples/labels"] = np.array(labels, dtype=np.int32)
    path = write_raw(tmp_path / "labels.bcnn.npz", stamped(manifest, version=2), arrays)
    expect_error(path, "samples labels must be class indices from -1 to 1 (-1: unlabelled)")


def streamed(path, manifest, arrays, big_keys, dtype=None):
    """Write ``arrays`` through a BundleWriter, the big ones epoch by epoch and sample by sample."""
    writer = BundleWriter(path)
    try:
        for key, value in arrays.items():
            if key not in big_keys:
                writer.add(key, value)
                continue
            slot = writer.reserve(key, value.shape, dtype or value.dtype)
            for epoch in range(value.shape[0]):
                if value.ndim >= 2 and key.startswith("activations/"):
                    for sample in range(value.shape[1]):  # one sample at a time, as small batches would come
                        slot.write(value[epoch, sample : sample + 1], epoch, first_sample=sample)
                else:
                    slot.write(value[epoch], epoch)
        return writer.finish(manifest)
    finally:
        writer.discard()


def test_streaming_writer_equals_write_bundle(tmp_path):
    manifest, arrays = small_bundle()
    big = {key for key in arrays if key.startswith(("activations/", "weights/"))}
    whole = load_bundle(write_bundle(tmp_path / "whole.bcnn.npz", manifest, arrays))
    parts = load_bundle(streamed(tmp_path / "parts.bcnn.npz", manifest, arrays, big))
    assert parts.manifest == whole.manifest
    for key, value in arrays.items():
        assert parts.array(key).dtype == value.dtype
        np.testing.assert_array_equal(parts.array(key), value)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["parts.bcnn.npz", "whole.bcnn.npz"]
    with zipfile.ZipFile(tmp_path / "parts.bcnn.npz") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def test_streaming_writer_converts_to_float16(tmp_path):
    manifest, arrays = small_bundle()
    path = streamed(tmp_path / "half.bcnn.npz", manifest, arrays, set(ACTIVATION_KEYS), dtype=np.float16)
    bundle = load_bundle(path)
    assert bundle.version == 2
    for key in ACTIVATION_KEYS:
        np.testing.assert_array_equal(bundle.array(key), arrays[key].astype(np.float16))


def test_streaming_writer_refuses_float16_overflow(tmp_path):
    writer = BundleWriter(tmp_path / "big.bcnn.npz")
    slot = writer.reserve("activations/dense", (1, 2, 2), np.float16)
    with pytest.raises(BlenderCNNError, match="activations/dense: holds values up to 1e\\+05, beyond what float16"):
        slot.write(np.array([[1.0, 1e5], [0.0, 1.0]], dtype=np.float32), 0)
    writer.discard()
    assert not list(tmp_path.iterdir())


def test_streaming_writer_refuses_unwritten_and_misplaced_slices(tmp_path):
    manifest, arrays = small_bundle()
    writer = BundleWriter(tmp_path / "gap.bcnn.npz")
    for key, value in arrays.items():
        if key != "weights/dense/kernel":
            writer.add(key, value)
    slot = writer.reserve("weights/dense/kernel", (3, 4, 2))
    with pytest.raises(BlenderCNNError, match="cannot write values of shape \\(4, 3\\)"):
        slot.write(np.zeros((4, 3), dtype=np.float32), 0)
    with pytest.raises(BlenderCNNError, match="cannot write"):
        slot.write(np.zeros((4, 2), dtype=np.float32), 3)
    slot.write(arrays["weights/dense/kernel"][0], 0)
    with pytest.raises(
        BlenderCNNError, match="'weights/dense/kernel' was never written for epoch positions \\[1, 2\\]"
    ):
        writer.finish(manifest)
    writer.discard()
    assert not list(tmp_path.iterdir())  # no bundle, no .partial, no temporary parts


def test_failed_validation_leaves_nothing(tmp_path):
    manifest, arrays = small_bundle()
    with pytest.raises(BlenderCNNError, match="'weights/dense/bias' has shape"):
        streamed(
            tmp_path / "bad.bcnn.npz",
            manifest,
            dict(arrays, **{"weights/dense/bias": np.zeros((3, 5), dtype=np.float32)}),
            {"weights/dense/bias"},
        )
    assert not list(tmp_path.iterdir())


def test_arrays_are_read_on_first_use(tmp_path):
    manifest, arrays = small_bundle()
    bundle = load_bundle(write_bundle(tmp_path / "lazy.bcnn.npz", manifest, arrays))
    assert not bundle._arrays._loaded  # validation looked at headers only
    bundle.weights("dense")
    assert set(bundle._arrays._loaded) == {"weights/dense/kernel", "weights/dense/bias"}
