"""ONNX files as Keras users write them: ``model.export("model.onnx", format="onnx")`` (tf2onnx underneath).

Published architectures from keras.applications, exported by the real writer, import with every node
translated (none left outputs-only for disagreeing), every layer's activations equal to onnxruntime's
for its tensor, and Show Image's numpy pass computing the same. tf2onnx writes NHWC inputs with Transposes,
1x1 transposes as Reshapes, BatchNormalization folded or as Mul/Add, and prefixes every node with the
model's name: the importer has to read all of that.
"""

import os

import numpy as np
import onnx_models
import pytest

from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.forward import forward
from blender_cnn.extract.keras_bundle import extract

pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore")]

# Small inputs keep the export and the import quick; each is the smallest the architecture takes.
ARCHITECTURES = {"MobileNetV2": (32, 32, 3), "DenseNet121": (32, 32, 3), "InceptionV3": (75, 75, 3)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{architecture: (onnx path, samples NHWC)}``, written once by Keras' own ONNX export."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    folder = tmp_path_factory.mktemp("keras_onnx")
    made = {}
    for name, shape in ARCHITECTURES.items():
        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, name)(weights=None, input_shape=shape, classes=5)
        inputs = np.random.default_rng(1).uniform(-1, 1, (3, *shape)).astype(np.float32)
        model(inputs[:1])  # Keras exports only a model that has run
        path = folder / name / f"{name}.onnx"
        path.parent.mkdir()
        model.export(str(path), format="onnx", verbose=False)
        np.savez(path.parent / "samples.npz", inputs=inputs, labels=np.arange(3, dtype=np.int32))
        made[name] = path, inputs
        keras.backend.clear_session()
    return made


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_keras_applications_exported_to_onnx_import_whole(exported, name):
    path, inputs = exported[name]
    lines = []
    bundle = load_bundle(extract(path, path.with_suffix(".bcnn.npz"), log=lines.append))
    assert not [line for line in lines if line.startswith("kept as outputs only")], lines
    assert not [layer for layer in bundle.layers if layer.type.startswith("onnx.")], "every node has a layer"
    assert bundle.input_shape == ARCHITECTURES[name]
    assert not any(layer.name.startswith(name.lower()) for layer in bundle.layers[1:]), "no model-name prefix"
    convolutions = [layer for layer in bundle.layers if layer.type in ("Conv2D", "DepthwiseConv2D")]
    assert len(convolutions) >= 35

    import onnx

    model = onnx.load(path)
    values = onnx_models.every_tensor(path, inputs)  # tf2onnx keeps Keras' NHWC input
    recorded = bundle.manifest["source"]["onnx_layers"]
    for layer in (layer for layer in bundle.layers if layer.name in recorded):  # not the padding Keras needs
        expected = onnx_models.expected_activations(bundle, layer, values, recorded_layouts=True)
        onnx_models.assert_close(bundle.layer_activations(layer.name), expected, layer.name)
    computed = forward(bundle, inputs)
    head = bundle.outputs[0].layer
    output = values[model.graph.output[0].name]
    onnx_models.assert_close(computed[head], output, "Show Image's output", relative=1e-4)
