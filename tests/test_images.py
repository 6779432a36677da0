"""The numpy image pipeline that Blender and the extractor share, against TensorFlow's own resize."""

import numpy as np
import pytest

from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.images import resize, to_model_input


@pytest.mark.tf
@pytest.mark.parametrize("source, target", [((8, 8), (16, 16)), ((100, 73), (16, 16)), ((37, 51), (64, 20))])
@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_resize_equals_tensorflow(source, target, antialias, method):
    import tensorflow as tf

    image = np.random.default_rng(1).random((*source, 3)).astype(np.float32)
    expected = tf.image.resize(image, target, method=method, antialias=antialias).numpy()
    np.testing.assert_allclose(resize(image, *target, antialias, method), expected, atol=2e-6)


def test_an_rgba_photo_becomes_a_grey_inverted_input_in_the_networks_range():
    photo = np.ones((40, 20, 4), dtype=np.float32)
    photo[10:30, 5:15, :3] = 0.0  # a black stroke on white paper
    values, recorded = to_model_input(photo, (16, 16, 1), {"invert": True, "range": [-1, 1], "fit": "crop"})
    assert values.shape == (16, 16, 1)
    assert values.min() == pytest.approx(-1.0, abs=1e-3) and values.max() == pytest.approx(1.0, abs=1e-5)
    assert values[8, 8, 0] == pytest.approx(1.0, abs=1e-5)  # the stroke is bright after inverting
    assert recorded["color"].startswith("alpha dropped, RGB to grey")
    assert recorded["fit"] == "crop" and recorded["range"] == [-1.0, 1.0]


def test_an_image_whose_channels_do_not_fit_is_refused_by_name():
    with pytest.raises(BlenderCNNError, match="scan.png: has 5 color channels; the network takes 3"):
        to_model_input(np.zeros((4, 4, 5)), (8, 8, 3), where="scan.png")
