"""Samples for a bundle: image files (decoded and resized with TensorFlow) and per-class picks from data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

tf = pytest.importorskip("tensorflow")

from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.extract.datasets import load_dataset, pick_samples  # noqa: E402
from blender_cnn.extract.samples import Samples, image_samples, read_samples, run_dataset_samples, samples_per_class_of  # noqa: E402

pytestmark = pytest.mark.tf
RED = (255, 0, 0)
LUMA_OF_RED = 0.2989  # tf.image.rgb_to_grayscale weights


def write_image(path, pixels):
    """Write uint8 ``pixels`` (H, W, C) as PNG or JPEG, chosen by the file's suffix."""
    pixels = tf.constant(np.asarray(pixels, dtype=np.uint8))
    encoded = tf.io.encode_png(pixels) if str(path).endswith(".png") else tf.io.encode_jpeg(pixels, quality=100)
    tf.io.write_file(str(path), encoded)
    return path


def uniform(height, width, color):
    return np.broadcast_to(np.asarray(color, dtype=np.uint8), (height, width, len(color)))


@pytest.fixture
def red_png_and_grey_jpeg(tmp_path):
    return (
        write_image(tmp_path / "red.png", uniform(30, 40, RED)),
        write_image(tmp_path / "grey.jpg", uniform(24, 24, (128,))),
    )


def test_images_become_inputs_of_the_network_shape(red_png_and_grey_jpeg):
    samples = image_samples(red_png_and_grey_jpeg, (16, 16, 1))
    assert samples.inputs.shape == (2, 16, 16, 1) and samples.inputs.dtype == np.float32
    assert samples.labels.tolist() == [-1, -1] and samples.labels.dtype == np.int32
    np.testing.assert_allclose(samples.inputs[0], LUMA_OF_RED, atol=1e-3)  # RGB -> grey by luma
    np.testing.assert_allclose(samples.inputs[1], 128 / 255, atol=2 / 255)  # JPEG is lossy
    assert samples.source_index is None


def test_grey_becomes_rgb(red_png_and_grey_jpeg):
    samples = image_samples(red_png_and_grey_jpeg, (8, 12, 3))
    assert samples.inputs.shape == (2, 8, 12, 3)
    np.testing.assert_allclose(samples.inputs[0], np.broadcast_to([1.0, 0.0, 0.0], (8, 12, 3)), atol=1e-6)
    grey = samples.inputs[1]
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert samples.preprocessing["color"] == ["unchanged (3 channels)", "grey to RGB (value repeated) (3 channels)"]


def test_resize_is_tensorflows(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(37, 23, 3), dtype=np.uint8)
    samples = image_samples([write_image(tmp_path / "noise.png", pixels)], (10, 14, 3))
    expected = tf.image.resize(pixels.astype(np.float32) / 255, (10, 14), method="bilinear", antialias=True)
    np.testing.assert_allclose(samples.inputs[0], expected.numpy(), atol=1e-6)
    nearest = image_samples([tmp_path / "noise.png"], (37, 23, 3), {"resize": "nearest"})
    np.testing.assert_allclose(nearest.inputs[0], pixels / 255, atol=1e-6)


def test_alpha_is_dropped(tmp_path):
    rgba = np.concatenate([uniform(6, 6, RED), np.zeros((6, 6, 1), dtype=np.uint8)], axis=-1)
    samples = image_samples([write_image(tmp_path / "clear.png", rgba)], (6, 6, 1))
    np.testing.assert_allclose(samples.inputs[0], LUMA_OF_RED, atol=1e-3)
    assert samples.preprocessing["color"].startswith("alpha dropped, RGB to grey")


def test_preprocessing_scales_and_is_recorded(red_png_and_grey_jpeg):
    network_preprocessing = {"range": [-1, 1], "invert": True, "scale": "trained on values -1..1"}
    samples = image_samples(red_png_and_grey_jpeg, (4, 4, 1), network_preprocessing)
    np.testing.assert_allclose(samples.inputs[0], -1 + 2 * (1 - LUMA_OF_RED), atol=2e-3)
    recorded = samples.preprocessing
    assert recorded["source"] == "image files" and recorded["files"] == ["red.png", "grey.jpg"]
    assert recorded["range"] == [-1.0, 1.0] and recorded["invert"] is True
    assert recorded["resize"] == {"method": "bilinear", "antialias": True, "to": [4, 4]}
    assert recorded["network_preprocessing"] == network_preprocessing
    assert recorded["labels"].startswith("-1")


def test_default_range_is_0_to_1_and_mean_std_apply(red_png_and_grey_jpeg):
    plain = image_samples(red_png_and_grey_jpeg, (4, 4, 3))
    assert plain.preprocessing["range"] == [0.0, 1.0]
    assert 0.0 <= plain.inputs.min() and plain.inputs.max() <= 1.0
    normalized = image_samples(red_png_and_grey_jpeg, (4, 4, 3), {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 1]})
    np.testing.assert_allclose(normalized.inputs[0, 0, 0], [(1 - 0.5) / 0.25, (0 - 0.5) / 0.5, -0.5], atol=1e-6)
    assert normalized.preprocessing["mean"] == [0.5, 0.5, 0.5]


def test_crop_keeps_the_centre(tmp_path):
    pixels = np.zeros((10, 30, 1), dtype=np.uint8)
    pixels[:, 10:20] = 255  # a white square in the middle of a wide image
    samples = image_samples([write_image(tmp_path / "wide.png", pixels)], (5, 5, 1), {"fit": "crop"})
    np.testing.assert_allclose(samples.inputs[0], 1.0, atol=1e-6)
    stretched = image_samples([tmp_path / "wide.png"], (5, 5, 1))
    assert stretched.inputs[0].min() < 0.5


@pytest.mark.parametrize(
    "make, shape, settings, fragment",
    [
        (lambda d: d / "missing.png", (4, 4, 1), None, "no such image file"),
        (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", (4, 4, 1), None, "is not a PNG or JPEG"),
        (
            lambda d: (d / "fake.png").write_bytes(b"not an image") and d / "fake.png",
            (4, 4, 1),
            None,
            "cannot be decoded as an image",
        ),
        (lambda d: write_image(d / "ok.png", uniform(4, 4, RED)), (16,), None, "take (height, width, 1 or 3"),
        (lambda d: write_image(d / "ok.png", uniform(4, 4, RED)), (4, 4, 1), {"range": [0]}, "'range' must be"),
        (lambda d: write_image(d / "ok.png", uniform(4, 4, RED)), (4, 4, 1), {"resize": "smooth"}, "resize method"),
        (lambda d: write_image(d / "ok.png", uniform(4, 4, RED)), (4, 4, 1), {"mean": [0.5]}, "'mean' and 'std'"),
    ],
)
def test_image_errors_name_the_problem(tmp_path, make, shape, settings, fragment):
    with pytest.raises(BlenderCNNError) as caught:
        image_samples([make(tmp_path)], shape, settings)
    assert fragment in str(caught.value)


def test_per_class_picks_the_requested_count():
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1], dtype=np.int32)
    stored = Samples(
        inputs=np.arange(9, dtype=np.float32).reshape(9, 1),
        labels=labels,
        preprocessing={"scale": "none"},
        source_index=np.arange(100, 109, dtype=np.int32),
    )
    picked = samples_per_class_of(stored, 2, class_count=3)
    assert picked.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.bincount(picked.labels).tolist() == [2, 2, 2]
    assert picked.inputs[:, 0].tolist() == [0, 2, 1, 4, 3, 6]
    assert picked.source_index.tolist() == [100, 102, 101, 104, 103, 106]
    assert picked.preprocessing["scale"] == "none" and picked.preprocessing["samples"]["per_class"] == 2
    with pytest.raises(BlenderCNNError, match="holds 3 samples of class 0; 4 per class were asked for"):
        samples_per_class_of(stored, 4, class_count=3)
    with pytest.raises(BlenderCNNError, match="must be a positive integer"):
        samples_per_class_of(stored, 0)


def test_samples_file_per_class(tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, inputs=np.zeros((4, 2, 2, 1), dtype=np.float32), labels=np.array([1, 0, 1, 0]))
    picked = samples_per_class_of(read_samples(path), 1)
    assert picked.labels.tolist() == [0, 1] and picked.source_index.tolist() == [1, 0]
    with pytest.raises(BlenderCNNError, match="samples.npz: holds 2 samples of class 0"):
        samples_per_class_of(read_samples(path), 3)


def test_run_dataset_samples_come_from_the_validation_split():
    run = {
        "dataset": "digits",
        "preprocessing": {},
        "preset": {"input_shape": [16, 16, 1], "training": {"validation_split": 0.2, "seed": 0}},
    }
    samples = run_dataset_samples(run, 3)
    assert samples.inputs.shape == (30, 16, 16, 1) and samples.dataset == "digits"
    assert np.bincount(samples.labels).tolist() == [3] * 10
    dataset = load_dataset("digits", [16, 16, 1], 0.2, 0)
    chosen = pick_samples(dataset.y_val, 3, 10)  # the way training picks its samples
    np.testing.assert_array_equal(samples.inputs, dataset.x_val[chosen])
    np.testing.assert_array_equal(samples.source_index, dataset.val_source_index[chosen])
    assert samples.preprocessing["resize"]["to"] == [16, 16] and samples.preprocessing["samples"]["per_class"] == 3
    assert run_dataset_samples({"dataset": "imagenet", "preset": {}}, 3) is None
