"""Damaged or hostile .onnx files: one clear error naming the file and the fault, no bundle, and no traceback.

Every file here is written with onnx itself (as a damaged download or a crafted file would be), then
handed to the extractor; TensorFlow is never needed.
"""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.extract import __main__ as extract_cli
from blender_cnn.extract.keras_bundle import extract

QUIET = {"log": lambda message: None}


def tiny_model(weights=None, ir_version=8, nodes=None, inputs=None):
    """Input (N, 2, 4, 4) -> a 1x1 Conv to 3 channels -> Relu -> GlobalAveragePool -> Flatten."""
    weights = (
        weights if weights is not None else [numpy_helper.from_array(np.ones((3, 2, 1, 1), np.float32), "conv.weight")]
    )
    nodes = nodes or [
        helper.make_node("Conv", ["input", "conv.weight"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["output"], name="/Flatten"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        inputs or [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)


def raw_tensor(name, dims, data):
    """A float weight whose bytes need not fit its shape: what onnx.helper refuses to write, a crafted file has."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, raw_data=data)
    tensor.dims.extend(dims)
    return tensor


def assert_refused(path, match):
    out = path.parent / "out.bcnn.npz"
    with pytest.raises(BlenderCNNError, match=match) as caught:
        extract(path, out, **QUIET)
    assert not out.exists() and not os.path.exists(str(out) + ".partial")
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_a_sound_tiny_model_imports(tmp_path):
    """The baseline the cases below break: the same file, unharmed, makes a bundle."""
    onnx.save(tiny_model(), tmp_path / "tiny.onnx")
    assert os.path.isfile(extract(tmp_path / "tiny.onnx", tmp_path / "tiny.bcnn.npz", **QUIET))


def test_a_truncated_file_is_refused(tmp_path):
    data = tiny_model().SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    assert_refused(tmp_path / "cut.onnx", "is not an ONNX model, or is truncated or damaged")


def test_bytes_that_are_no_model_and_an_empty_file_are_refused(tmp_path):
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    assert_refused(tmp_path / "noise.onnx", "is not an ONNX model|holds no ONNX graph")
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert_refused(tmp_path / "empty.onnx", "is empty, not an ONNX model")


def test_a_cyclic_graph_is_refused_with_its_cycle(tmp_path):
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        helper.make_node("Add", ["c", "loop"], ["a"], name="/add/Add"),
        helper.make_node("Relu", ["a"], ["loop"], name="/relu/Relu"),
        helper.make_node("GlobalAveragePool", ["loop"], ["g"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["output"], name="/Flatten"),
    ]
    onnx.save(tiny_model(nodes=nodes), tmp_path / "cycle.onnx")
    message = assert_refused(tmp_path / "cycle.onnx", "has a cycle in its graph")
    assert "/add/Add" in message and "/relu/Relu" in message


def test_external_data_outside_the_models_folder_is_refused(tmp_path):
    model = tiny_model()
    outside = tmp_path / "secret.bin"
    outside.write_bytes(np.ones(6, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "24")):
        weight.external_data.add(key=key, value=value)
    onnx.save(model, folder / "escape.onnx")
    message = assert_refused(folder / "escape.onnx", "outside the model's folder")
    assert "'conv.weight'" in message and "../secret.bin" in message


def test_missing_or_short_external_data_is_refused(tmp_path):
    model = tiny_model()
    onnx.save(model, tmp_path / "split.onnx", save_as_external_data=True, location="split.data", size_threshold=0)
    (tmp_path / "split.data").write_bytes(b"\0" * 8)  # the 24 bytes of the weight, cut short
    assert_refused(tmp_path / "split.onnx", "external data is truncated")
    os.remove(tmp_path / "split.data")
    assert_refused(tmp_path / "split.onnx", "needs the external-data file 'split.data', which is not beside it")


def test_external_data_beside_the_model_is_read(tmp_path):
    onnx.save(
        tiny_model(), tmp_path / "split.onnx", save_as_external_data=True, location="split.data", size_threshold=0
    )
    assert os.path.getsize(tmp_path / "split.onnx") < os.path.getsize(tmp_path / "split.data") + 400
    from blender_cnn.core.bundle import load_bundle

    bundle = load_bundle(extract(tmp_path / "split.onnx", tmp_path / "split.bcnn.npz", **QUIET))
    assert np.array_equal(bundle.weights("conv")["kernel"], np.ones((1, 1, 2, 3), np.float32))


def test_absurd_shapes_are_refused(tmp_path):
    huge = raw_tensor("conv.weight", [3, 2, 100000, 100000], b"")
    onnx.save(tiny_model(weights=[huge]), tmp_path / "huge.onnx")
    assert_refused(tmp_path / "huge.onnx", r"weight 'conv.weight' declares the absurd shape \(3, 2, 100000, 100000\)")

    short = raw_tensor("conv.weight", [3, 2, 1, 1], b"\0" * 8)
    onnx.save(tiny_model(weights=[short]), tmp_path / "short.onnx")
    assert_refused(tmp_path / "short.onnx", "should hold 24 bytes but holds 8: the file is damaged")

    wide_input = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2, 1000000, 1000000])]
    onnx.save(tiny_model(inputs=wide_input), tmp_path / "wide.onnx")
    assert_refused(tmp_path / "wide.onnx", r"input 'input' declares the absurd shape")


def test_a_file_onnxruntime_cannot_run_gets_its_reason(tmp_path):
    """An IR version newer than the runtime's, and an operator of a domain it lacks."""
    onnx.save(tiny_model(ir_version=99), tmp_path / "future.onnx")
    assert_refused(tmp_path / "future.onnx", "is not a valid ONNX model|cannot be run by onnxruntime")

    nodes = [helper.make_node("Mystery", ["input"], ["output"], name="/m/Mystery", domain="com.example")]
    model = tiny_model(nodes=nodes, weights=[])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(model, tmp_path / "custom.onnx")
    assert_refused(tmp_path / "custom.onnx", "cannot be run by onnxruntime|is not a valid ONNX model")


def test_a_network_of_two_inputs_is_refused_by_name(tmp_path):
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2, 4, 4]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 2, 4, 4]),
    ]
    nodes = [
        helper.make_node("Add", ["input", "mask"], ["s"], name="/Add"),
        helper.make_node("Conv", ["s", "conv.weight"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["output"], name="/Flatten"),
    ]
    onnx.save(tiny_model(nodes=nodes, inputs=inputs), tmp_path / "two.onnx")
    assert_refused(tmp_path / "two.onnx", r"takes 2 inputs \(input, mask\); ONNX import takes networks of one")


def test_the_command_line_prints_one_line_and_no_traceback(tmp_path, capsys):
    data = tiny_model().SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[:40])
    assert extract_cli.main([str(tmp_path / "cut.onnx"), "--out", str(tmp_path / "cut.bcnn.npz")]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    error_lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(error_lines) == 1 and error_lines[0].startswith("error: ") and "cut.onnx" in error_lines[0]
