"""Bundle files written by hand with numpy, valid or broken, for the tests of the format and of importance; and
what the extraction tests hand the extractor: samples files, small designs, checkpoints moved as if trained."""

import json

import numpy as np
import pytest

from blender_cnn.core.bundle import FORMAT_NAME, MANIFEST_KEY, load_bundle
from blender_cnn.core.errors import BlenderCNNError

EPOCHS = [0, 1, 2]
SAMPLES = 2


def small_bundle():
    """A two-layer network (input -> dense) with every kind of array the format has."""
    rng = np.random.default_rng(0)
    e, s = len(EPOCHS), SAMPLES
    manifest = {
        "name": "small",
        "input_shape": [2, 2, 1],
        "class_names": ["no", "yes"],
        "epochs": EPOCHS,
        "layers": [
            {
                "name": "input",
                "type": "InputLayer",
                "inputs": [],
                "output_shape": [2, 2, 1],
                "config": {},
                "params": 0,
                "weights": [],
                "activations": "activations/input",
            },
            {
                "name": "flatten",
                "type": "Flatten",
                "inputs": ["input"],
                "output_shape": [4],
                "config": {},
                "params": 0,
                "weights": [],
                "activations": "activations/flatten",
            },
            {
                "name": "dense",
                "type": "Dense",
                "inputs": ["flatten"],
                "output_shape": [2],
                "config": {"units": 2, "activation": "softmax"},
                "params": 10,
                "weights": [
                    {"name": "kernel", "array": "weights/dense/kernel", "shape": [4, 2]},
                    {"name": "bias", "array": "weights/dense/bias", "shape": [2]},
                ],
                "activations": "activations/dense",
            },
        ],
        "samples": {
            "inputs": "samples/inputs",
            "labels": "samples/labels",
            "predictions": "samples/predictions",
            "preprocessing": {"scale": "none"},
        },
        "metrics": {"loss": "metrics/loss"},
    }
    inputs = rng.random((s, 2, 2, 1), dtype=np.float32)
    arrays = {
        "samples/inputs": inputs,
        "samples/labels": np.array([0, 1], dtype=np.int32),
        "samples/predictions": rng.random((e, s, 2), dtype=np.float32),
        "metrics/loss": np.array([np.nan, 0.5, 0.25], dtype=np.float32),
        "activations/input": inputs[np.newaxis],
        "activations/flatten": np.repeat(inputs.reshape(1, s, 4), e, axis=0),
        "activations/dense": rng.random((e, s, 2), dtype=np.float32),
        "weights/dense/kernel": rng.random((e, 4, 2), dtype=np.float32),
        "weights/dense/bias": rng.random((e, 2), dtype=np.float32),
    }
    return manifest, arrays


def write_raw(path, manifest, arrays):
    """Write a bundle-like file without validation, as a broken or foreign writer would."""
    encoded = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    np.savez(path, **{MANIFEST_KEY: encoded}, **arrays)
    return path


def stamped(manifest, version=1):
    return dict(manifest, format=FORMAT_NAME, version=version)


def expect_error(path, *fragments):
    with pytest.raises(BlenderCNNError) as caught:
        load_bundle(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message


def as_if_trained(variable, rng, noise=0.3, gamma=(0.5, 1.5)):
    """New values for a Keras float variable, moved as training would move them: every weight shifted by
    noise, while variances stay positive and scales (gamma, PReLU's alpha) stay in a plausible range."""
    shape = tuple(variable.shape)
    if variable.name in ("moving_variance", "variance"):
        return rng.uniform(0.3, 2.0, shape)
    if variable.name == "gamma":
        return rng.uniform(*gamma, shape)
    if variable.name == "alpha":
        return rng.uniform(0.05, 0.5, shape)
    return variable.numpy() + rng.normal(0, noise, shape)


def random_samples(count, shape, classes, label_dtype=np.int32):
    """``(inputs, labels)``: ``count`` random inputs of ``shape`` in [0, 1) and random labels below ``classes``."""
    rng = np.random.default_rng(0)
    return rng.random((count, *shape), dtype=np.float32), rng.integers(0, classes, count).astype(label_dtype)


def write_samples(path, data, count=4):
    """A samples.npz of the first ``count`` of ``data``'s ``(inputs, labels)``."""
    inputs, labels = data
    np.savez(path, inputs=inputs[:count], labels=labels[:count])
    return path


def small_design(input_shape):
    """A valid design of three classes a, b, c: conv (2 filters), pool, flatten and a softmax head, out."""
    return {
        "name": "small",
        "input_shape": list(input_shape),
        "class_names": ["a", "b", "c"],
        "layers": [
            {"type": "Conv2D", "name": "conv", "filters": 2, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D", "name": "pool", "pool_size": 2},
            {"type": "Flatten", "name": "flatten"},
            {"type": "Dense", "name": "out", "units": 3, "activation": "softmax"},
        ],
    }


def tiny_digits_design(layers, **training):
    """A design named tiny of the digits dataset at 8x8 (classes "0" to "9"), its ``layers`` and ``training``."""
    return {
        "name": "tiny",
        "input_shape": [8, 8, 1],
        "class_names": [str(digit) for digit in range(10)],
        "layers": layers,
        "training": {"dataset": "digits", **training},
    }


def save_nudged_checkpoints(model, folder, epochs, rng, noise):
    """Save ``model`` as ``folder``/epoch_000.keras, epoch_001.keras ...: after the first, every weight moves by
    normal noise of scale ``noise`` from the epoch before, as training would move it."""
    for epoch in range(epochs):
        if epoch:
            for variable in model.weights:
                variable.assign(variable.numpy() + rng.normal(0, noise, variable.shape).astype(np.float32))
        model.save(folder / f"epoch_{epoch:03d}.keras")
