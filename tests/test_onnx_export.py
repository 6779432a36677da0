"""Export to ONNX, as a user checks it: onnxruntime computes from the file what the design's scene shows.

Every designable layer type, in small designs (8x8 inputs) that exercise its
arguments, and the shipped presets, are exported with a seed; onnxruntime's
output for NCHW inputs equals the numpy forward pass's (``core.forward``, what
Build Scene shows) for the same inputs in NHWC. No TensorFlow anywhere: these
tests run in the fast tier, where importing it fails.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from blender_cnn.core import forward
from blender_cnn.core.design import random_weights, validate_design
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.layer_specs import designable_layer_types
from blender_cnn.core.numpy_layers import ACTIVATIONS
from blender_cnn.extract.onnx_export import export_onnx, start_onnx_export

REPO = Path(__file__).resolve().parent.parent
# VGG16 (134 M parameters) takes several times longer than all the rest together; its layers are those of the others.
PRESETS = sorted(path for path in (REPO / "presets").glob("*.json") if path.stem != "vgg16")
CLASSES = ["a", "b", "c"]


def headed(name, *layers, input_shape=(8, 8, 2)):
    """A design of ``layers``, then a Flatten and a linear Dense of three classes (no softmax to hide errors)."""
    return {
        "name": name,
        "input_shape": list(input_shape),
        "class_names": CLASSES,
        "layers": [*layers, {"type": "Flatten", "name": "flat_head"}, {"type": "Dense", "name": "output", "units": 3}],
    }


def conv(name, filters=4, **arguments):
    return {"type": "Conv2D", "name": name, "filters": filters, "kernel_size": 3, "padding": "same", **arguments}


def transposed(name, **arguments):
    return headed(name, {"type": "Conv2DTranspose", "name": name, "filters": 3, **arguments}, input_shape=(4, 5, 2))


RELU_CASES = {
    "plain": {},
    "max_value": {"max_value": 0.5},
    "negative_slope": {"negative_slope": 0.2},
    "threshold": {"threshold": 0.3},
    "threshold_max_value": {"threshold": 0.3, "max_value": 0.6},
    "negative_slope_max_value": {"negative_slope": 0.1, "max_value": 0.4},
    "threshold_negative_slope": {"threshold": 0.2, "negative_slope": 0.3},
    "everything": {"threshold": 0.1, "negative_slope": 0.3, "max_value": 0.5},
}
EXPORTABLE_ACTIVATIONS = sorted(set(ACTIVATIONS) - {"glu"})

CASES = {
    "Conv2D same, strided, asymmetric pads": headed(
        "c", conv("conv", kernel_size=[3, 4], strides=2, activation="relu"), input_shape=(9, 7, 2)
    ),
    "Conv2D grouped, dilated, no bias": headed(
        "c",
        conv("conv", filters=6, dilation_rate=2, groups=2, use_bias=False, activation="tanh"),
        conv("conv2", kernel_size=[2, 3], strides=[2, 1], padding="valid"),
    ),
    "DepthwiseConv2D": headed(
        "d",
        {
            "type": "DepthwiseConv2D",
            "name": "depthwise",
            "kernel_size": 3,
            "strides": 2,
            "depth_multiplier": 2,
            "padding": "same",
            "activation": "relu6",
        },
        {"type": "DepthwiseConv2D", "name": "depthwise2", "kernel_size": [2, 1], "use_bias": False},
        input_shape=(9, 8, 3),
    ),
    "SeparableConv2D": headed(
        "s",
        {
            "type": "SeparableConv2D",
            "name": "separable",
            "filters": 5,
            "kernel_size": 3,
            "depth_multiplier": 2,
            "padding": "same",
            "activation": "elu",
        },
        {
            "type": "SeparableConv2D",
            "name": "separable2",
            "filters": 3,
            "kernel_size": 2,
            "dilation_rate": 2,
            "use_bias": False,
        },
    ),
    "Conv2DTranspose valid": transposed("up", kernel_size=3, strides=2, activation="sigmoid"),
    "Conv2DTranspose valid, output padding": transposed("up", kernel_size=3, strides=2, output_padding=1),
    "Conv2DTranspose valid, stride past the kernel": transposed("up", kernel_size=2, strides=3),
    "Conv2DTranspose same, output padding": transposed(
        "up", kernel_size=4, strides=2, padding="same", output_padding=1
    ),
    "Conv2DTranspose same, stride past the kernel": transposed("up", kernel_size=1, strides=3, padding="same"),
    "Conv2DTranspose same, dilated, no bias": transposed(
        "up", kernel_size=3, dilation_rate=2, padding="same", use_bias=False
    ),
    "Conv2DTranspose same, odd kernel, strided": transposed("up", kernel_size=[3, 2], strides=[2, 3], padding="same"),
    "ZeroPadding2D": headed(
        "z", {"type": "ZeroPadding2D", "name": "pad", "padding": [[1, 2], [0, 3]]}, conv("conv", padding="valid")
    ),
    "MaxPooling2D": headed(
        "m",
        {"type": "MaxPooling2D", "name": "pool", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "MaxPooling2D", "name": "pool2", "pool_size": [2, 1]},
        input_shape=(9, 7, 2),
    ),
    "AveragePooling2D": headed(
        "a",
        {"type": "AveragePooling2D", "name": "pool", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "AveragePooling2D", "name": "pool2", "pool_size": [2, 3], "strides": [1, 2]},
        input_shape=(9, 11, 2),
    ),
    "GlobalAveragePooling2D": headed(
        "g",
        conv("conv"),
        {"type": "GlobalAveragePooling2D", "name": "gap", "keepdims": True},
        conv("conv2", kernel_size=1),
    ),
    "GlobalMaxPooling2D": {
        "name": "g",
        "input_shape": [8, 8, 2],
        "class_names": CLASSES,
        "layers": [
            conv("conv"),
            {"type": "GlobalMaxPooling2D", "name": "gmp"},
            {"type": "Dense", "name": "output", "units": 3},
        ],
    },
    **{
        f"Activation {name}": headed("act", conv("conv"), {"type": "Activation", "name": "act", "activation": name})
        for name in EXPORTABLE_ACTIVATIONS
    },
    "Activation of a Dense": {
        "name": "act",
        "input_shape": [8, 8, 2],
        "class_names": CLASSES,
        "layers": [
            {"type": "Flatten", "name": "flatten"},
            {"type": "Dense", "name": "hidden", "units": 6, "activation": "sparsemax"},
            {"type": "Dense", "name": "output", "units": 3, "activation": "log_softmax"},
        ],
    },
    **{
        f"ReLU {case}": headed("r", conv("conv"), {"type": "ReLU", "name": "relu", **settings})
        for case, settings in RELU_CASES.items()
    },
    "LeakyReLU": headed("l", conv("conv"), {"type": "LeakyReLU", "name": "leaky", "negative_slope": 0.1}),
    "Softmax over channels, rows and columns": headed(
        "s",
        conv("conv"),
        {"type": "Softmax", "name": "softmax"},
        {"type": "Softmax", "name": "softmax_rows", "axis": 1},
        {"type": "Softmax", "name": "softmax_columns", "axis": -2},
    ),
    "Dense without bias after a Flatten, dropout, normalization and activations": {
        "name": "dense",
        "input_shape": [6, 5, 3],
        "class_names": CLASSES,
        "layers": [
            conv("conv"),
            {"type": "Flatten", "name": "flatten"},
            {"type": "Dropout", "name": "drop", "rate": 0.5},
            {"type": "BatchNormalization", "name": "bn"},
            {"type": "Rescaling", "name": "scaled", "scale": 2.0, "offset": -0.5},
            {"type": "ReLU", "name": "relu", "negative_slope": 0.1},
            {"type": "LeakyReLU", "name": "leaky"},
            {"type": "Activation", "name": "soft", "activation": "softmax"},
            {"type": "Softmax", "name": "softmax"},
            {"type": "Flatten", "name": "flatten_again"},
            {"type": "Dense", "name": "hidden", "units": 7, "use_bias": False, "activation": "gelu"},
            {"type": "Dense", "name": "output", "units": 3},
        ],
    },
    "Flatten read by a Reshape and a Concatenate": {
        "name": "f",
        "input_shape": [4, 4, 3],
        "class_names": [str(n) for n in range(6)],
        "layers": [
            conv("conv", filters=2),
            {"type": "Flatten", "name": "flatten"},
            {"type": "Reshape", "name": "image", "target_shape": [8, 2, 2]},
            {"type": "Conv2D", "name": "conv2", "filters": 3, "kernel_size": 2},
            {"type": "Flatten", "name": "flatten2"},
            {"type": "Concatenate", "name": "both", "inputs": ["flatten", "flatten2"]},
            {"type": "Dense", "name": "output", "units": 6},
        ],
    },
    "Flatten as the output": {
        "name": "f",
        "input_shape": [8, 8, 2],
        "class_names": CLASSES,
        "layers": [
            conv("conv", filters=3),
            {"type": "GlobalAveragePooling2D", "name": "gap", "keepdims": True},
            {"type": "Flatten", "name": "output"},
        ],
    },
    "Reshape to rows, normalized": headed(
        "r",
        conv("conv"),
        {"type": "Reshape", "name": "rows", "target_shape": [16, -1]},
        {"type": "BatchNormalization", "name": "bn", "center": False, "epsilon": 0.01},
        {"type": "Softmax", "name": "softmax"},
        {"type": "Reshape", "name": "image", "target_shape": [4, 4, 16]},
        conv("conv2", filters=2),
    ),
    "Dropout last": {
        "name": "d",
        "input_shape": [12],
        "class_names": CLASSES,
        "layers": [{"type": "Dense", "name": "dense", "units": 3}, {"type": "Dropout", "name": "output", "rate": 0.2}],
    },
    "BatchNormalization of a map": headed(
        "b",
        conv("conv"),
        {"type": "BatchNormalization", "name": "bn", "scale": False},
        {"type": "BatchNormalization", "name": "bn2", "epsilon": 0.1},
    ),
    "Rescaling": headed(
        "r",
        {"type": "Rescaling", "name": "scaled", "scale": 0.5, "offset": 0.25},
        {"type": "Rescaling", "name": "scaled2", "scale": 3.0},
    ),
    "Add of three": headed(
        "a",
        conv("conv1"),
        conv("conv2", inputs=["input"]),
        conv("conv3", inputs=["input"]),
        {"type": "Add", "name": "add", "inputs": ["conv1", "conv2", "conv3"]},
    ),
    "Concatenate of maps and from the end": headed(
        "c",
        conv("conv1"),
        conv("conv2", filters=2, inputs=["input"]),
        {"type": "Concatenate", "name": "channels", "inputs": ["conv1", "conv2"]},
        {"type": "Concatenate", "name": "rows", "axis": -3, "inputs": ["channels", "channels"]},
        {"type": "Concatenate", "name": "columns", "axis": -2, "inputs": ["rows", "rows"]},
    ),
}


def design_layers(design):
    return {layer["type"] for layer in design["layers"]}


def numpy_output(design, seed, inputs):
    """The design's output for ``inputs`` (NHWC) with ``random_weights(design, seed)``: what its scene shows."""
    infos = validate_design(design)
    weights = random_weights(design, seed)
    outputs = {infos[0].name: inputs}
    for info in infos[1:]:
        sources = [outputs[name] for name in info.inputs]
        outputs[info.name] = forward.compute_layer(info.type, info.config, weights.get(info.name, {}), sources)
    return outputs[infos[-1].name]


def onnx_output(path, inputs):
    """onnxruntime's output of the file for ``inputs`` given as a PyTorch user gives them: NCHW."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    nchw = inputs.transpose(0, 3, 1, 2) if inputs.ndim == 4 else inputs
    (output,) = session.run(None, {"input": np.ascontiguousarray(nchw)})
    return output


def assert_computes_the_design(path, design, seed):
    inputs = np.random.default_rng(5).normal(size=(3, *design["input_shape"])).astype(np.float32)
    expected = numpy_output(design, seed, inputs)
    got = onnx_output(path, inputs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


# ---------------------------------------------------------------- what the file computes


def test_the_cases_cover_every_designable_layer_type():
    assert set().union(*map(design_layers, CASES.values())) == set(designable_layer_types())


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_computes_what_the_design_shows(case, tmp_path):
    design = copy.deepcopy(CASES[case])
    path = export_onnx(design, tmp_path / "model.onnx", seed=4)
    assert_computes_the_design(path, design, seed=4)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda path: path.stem)
def test_every_preset_exports_with_the_weights_its_scene_shows(preset, tmp_path):
    path = export_onnx(preset, tmp_path / f"{preset.stem}.onnx", seed=2)
    assert_computes_the_design(path, json.loads(preset.read_text()), seed=2)


def test_the_file_reads_as_pytorch_exports_it(tmp_path):
    design = headed(
        "pytorch_like",
        conv("conv1", activation="relu"),
        {"type": "BatchNormalization", "name": "bn"},
        {"type": "MaxPooling2D", "name": "pool"},
    )
    lines = []
    path = export_onnx(design, tmp_path / "model.onnx", seed=0, log=lines.append)
    model = onnx.load(path)
    graph = model.graph
    assert [(opset.domain, opset.version) for opset in model.opset_import] == [("", 17)]
    (given,) = graph.input
    dims = [dim.dim_param or dim.dim_value for dim in given.type.tensor_type.shape.dim]
    assert given.name == "input" and dims == ["batch", 2, 8, 8]
    (output,) = graph.output
    assert output.name == "output"
    assert [dim.dim_param or dim.dim_value for dim in output.type.tensor_type.shape.dim] == ["batch", 3]
    assert [node.name for node in graph.node] == [
        "/conv1/Conv",
        "/conv1/Relu",
        "/bn/BatchNormalization",
        "/pool/MaxPool",
        "/flat_head/Flatten",
        "/output/Gemm",
    ]
    assert graph.node[0].output == ["/conv1/Conv_output_0"] and graph.node[-1].output == ["output"]
    weights = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in graph.initializer}
    assert sorted(weights) == [
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.weight",
        "conv1.bias",
        "conv1.weight",
        "output.bias",
        "output.weight",
    ]
    kernel = random_weights(design, 0)["conv1"]["kernel"]  # Keras' (kh, kw, in, out)
    np.testing.assert_array_equal(weights["conv1.weight"], kernel.transpose(3, 2, 0, 1))
    assert weights["output.weight"].shape == (3, 4 * 4 * 4)  # Linear's (out, in)
    assert json.loads({prop.key: prop.value for prop in model.metadata_props}["class_names"]) == CLASSES
    assert lines[-1].startswith(f"wrote {path}: 'pytorch_like', ") and "seed 0" in lines[-1]


def test_a_flatten_read_by_a_dense_flattens_channels_first_as_pytorch_does(tmp_path):
    design = CASES["Dense without bias after a Flatten, dropout, normalization and activations"]
    graph = onnx.load(export_onnx(design, tmp_path / "model.onnx")).graph
    assert "Transpose" not in {node.op_type for node in graph.node}
    reshaped = onnx.load(export_onnx(CASES["Flatten read by a Reshape and a Concatenate"], tmp_path / "r.onnx")).graph
    assert [node.name for node in reshaped.node if node.op_type == "Transpose"][0] == "/flatten/Transpose"


# ---------------------------------------------------------------- what it refuses


def test_a_design_onnx_cannot_express_is_refused_naming_the_layer_and_argument(tmp_path):
    design = headed(
        "refused",
        conv("conv", filters=4, activation="glu"),
        conv("side", inputs=["input"]),
        {"type": "Concatenate", "name": "join", "axis": 2, "inputs": ["conv", "side"]},
    )
    with pytest.raises(BlenderCNNError) as raised:
        export_onnx(design, tmp_path / "refused.onnx")
    message = str(raised.value)
    assert message.startswith("design 'refused': cannot be exported to ONNX, 2 layers:")
    assert "conv: its activation 'glu' halves the channels" in message
    assert "join: Keras counts its axis 2 from the batch axis" in message and "(-1)" in message
    assert not (tmp_path / "refused.onnx").exists()


def test_an_activation_without_a_translation_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(ACTIVATIONS, "cube", lambda x: x**3)  # one added to the numpy forward pass only
    design = headed("cubed", conv("conv", activation="cube"))
    with pytest.raises(BlenderCNNError, match="conv: its activation 'cube' has no ONNX translation here; the ones"):
        export_onnx(design, tmp_path / "cubed.onnx")


def test_an_invalid_design_or_path_writes_nothing(tmp_path):
    broken = headed("broken", conv("conv", kernel_size=20, padding="valid"))
    with pytest.raises(BlenderCNNError, match="(?s)has 1 problem:.*conv: kernel 20x20 is larger"):
        export_onnx(broken, tmp_path / "broken.onnx")
    with pytest.raises(BlenderCNNError, match="must end in .onnx"):
        export_onnx(CASES["Rescaling"], tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the command line and the job


def test_the_command_line_writes_the_file_without_importing_tensorflow(tmp_path):
    out = tmp_path / "out" / "lenet5.onnx"
    code = (
        "import sys; from blender_cnn.extract.onnx_export import main; code = main(sys.argv[1:]); "
        "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TensorFlow was imported'; sys.exit(code)"
    )
    preset = REPO / "presets" / "lenet5.json"
    result = subprocess.run(
        [sys.executable, "-c", code, str(preset), str(out), "--seed", "3"], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1].startswith(f"wrote {out}: 'lenet5', 61706 parameters")
    assert_computes_the_design(out, json.loads(preset.read_text()), seed=3)
    failed = subprocess.run(
        [sys.executable, "-m", "blender_cnn.extract.onnx_export", str(preset), str(tmp_path / "x.keras")],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2 and failed.stderr.strip().endswith("an ONNX model file must end in .onnx")


def test_the_job_runs_here_or_in_the_external_python(tmp_path):
    design = CASES["Add of three"]
    here = start_onnx_export(design, tmp_path / "here.onnx", seed=6)
    assert here.wait() == str(tmp_path / "here.onnx")
    assert here.progress_done == len(design["layers"])
    elsewhere = start_onnx_export(design, tmp_path / "there.onnx", seed=6, python_path=sys.executable, in_process=False)
    assert elsewhere.wait() == str(tmp_path / "there.onnx")
    for name in ("here.onnx", "there.onnx"):
        assert_computes_the_design(tmp_path / name, design, seed=6)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["here.onnx", "there.onnx"]


def test_the_job_says_where_to_find_onnx_when_blender_has_none(tmp_path):
    with pytest.raises(
        BlenderCNNError, match="onnx is not importable in Blender's Python. Set 'Python with TensorFlow' .* onnx=="
    ):
        start_onnx_export(CASES["Rescaling"], tmp_path / "model.onnx", in_process=False)


# ---------------------------------------------------------------- the designer


@pytest.mark.bpy
def test_export_to_onnx_computes_what_the_designed_scene_shows(bpy_designer, tmp_path):
    from ui_recorder import draw_designer_panel, modal_context, modal_driver

    from blender_cnn.designer.tensorflow_operators import BCNN_OT_export_onnx
    from blender_cnn.designer.tree import tree_from_design
    from blender_cnn.scene.network import network_bundle

    bpy = bpy_designer
    design = CASES["Dense without bias after a Flatten, dropout, normalization and activations"]
    tree = tree_from_design(copy.deepcopy(design))
    assert "bcnn.export_onnx" in draw_designer_panel(bpy, tree)["operators"]
    assert bpy.ops.bcnn.build_design_scene(tree_name=tree.name, seed=3, frame_camera=False) == {"FINISHED"}
    bundle = network_bundle(bpy.context.view_layer.objects.active)

    path = tmp_path / "exported" / "dense.onnx"
    # No seed given: the export takes the seed the scene was built with.
    assert bpy.ops.bcnn.export_onnx(tree_name=tree.name, filepath=str(path)) == {"FINISHED"}
    inputs = bundle.array("samples/inputs")
    shown = bundle.array(bundle.layers[-1].activations)[0]
    np.testing.assert_allclose(onnx_output(path, inputs), shown, rtol=0, atol=1e-5 * np.abs(shown).max())

    driver = modal_driver(BCNN_OT_export_onnx, tree_name=tree.name, filepath=str(path), seed=5)
    assert driver.execute(modal_context(bpy)) == {"FINISHED"}
    assert driver.reports == [({"INFO"}, f"Exported design dense as an ONNX model (weights of seed 5) to {path}")]
    assert_computes_the_design(path, design, seed=5)
