"""ONNX files as PyTorch writes them (tests/onnx_models.py) import into bundles a PyTorch user recognises.

What a user checks: the layers are the modules they wrote, named by their paths; every layer's
activations are onnxruntime's for its node; Show Image (the numpy forward pass) computes what
onnxruntime computes; a folder of per-epoch exports animates like a Keras run; and the Keras model of
the same function gives the same bundle and the same scene. Only the tests marked ``tf`` need TensorFlow.
"""

import csv
import os
from pathlib import Path

import numpy as np
import onnx
import onnx_models
import pytest
from onnx import TensorProto, helper

from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.forward import forward
from blender_cnn.extract.keras_bundle import extract

NETWORKS = sorted(onnx_models.NETWORKS)
REPO = Path(__file__).resolve().parent.parent


def quiet(_line):
    pass


def write_samples(folder, network, count=4):
    """samples.npz as the extractor reads it: channels-last inputs and labels."""
    nchw = onnx_models.sample_inputs(network, count=count)
    labels = np.arange(count, dtype=np.int32) % network.classes
    np.savez(folder / "samples.npz", inputs=nchw.transpose(0, 2, 3, 1), labels=labels)
    return nchw


def imported(tmp_path, network, **save_options):
    path = onnx_models.save_onnx(network, tmp_path / f"{network.name}.onnx", **save_options)
    nchw = write_samples(tmp_path, network)
    return path, nchw, load_bundle(extract(path, tmp_path / "net.bcnn.npz", log=quiet))


@pytest.mark.parametrize("name", NETWORKS)
def test_layers_are_the_modules_pytorch_users_wrote(tmp_path, name):
    network = onnx_models.NETWORKS[name]()
    _path, _nchw, bundle = imported(tmp_path, network)
    twin = onnx_models.keras_layers(network)
    assert [(layer.name, layer.type) for layer in bundle.layers] == [(spec.name, spec.class_name) for spec in twin]
    assert [list(layer.inputs) for layer in bundle.layers] == [list(spec.inputs) for spec in twin]
    assert bundle.manifest["unrecognized_layers"] == [
        layer.name for layer in bundle.layers[1:] if layer.type == "Multiply"
    ], "every ONNX node became a layer the add-on draws"
    weights = onnx_models.keras_weights_of(network)
    for layer in bundle.layers:
        stored = bundle.weights(layer.name) if layer.weights else {}
        assert [w.name for w in layer.weights] == list(stored)
        for got, expected in zip(stored.values(), weights[layer.name]):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7, err_msg=layer.name)


@pytest.mark.parametrize("name", NETWORKS)
def test_every_layers_activations_are_onnxruntimes_for_its_node(tmp_path, name):
    network = onnx_models.NETWORKS[name]()
    path, nchw, bundle = imported(tmp_path, network)
    values = onnx_models.every_tensor(path, nchw)
    recorded = bundle.manifest["source"]["onnx_layers"]
    padding = [layer.name for layer in bundle.layers if layer.name not in recorded]
    assert all(name.endswith(".pad") for name in padding), "only the padding Keras needs has no node of its own"
    for layer in bundle.layers:
        if layer.name in padding:
            continue
        expected = onnx_models.expected_activations(bundle, layer, values)
        onnx_models.assert_close(
            bundle.layer_activations(layer.name), expected, f"{layer.name} ({recorded[layer.name]['tensor']})"
        )
    probabilities = bundle.array("samples/predictions")[0]
    logits = values[onnx.load(path).graph.output[0].name]
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = logits if name.startswith("inverted") else softmax / softmax.sum(axis=1, keepdims=True)
    onnx_models.assert_close(probabilities, expected, "predictions")


@pytest.mark.parametrize("name", NETWORKS)
def test_show_image_computes_what_onnxruntime_does(tmp_path, name):
    """The numpy forward pass on the bundle's weights, from the input alone, gives every node's value."""
    network = onnx_models.NETWORKS[name]()
    path, nchw, bundle = imported(tmp_path, network)
    values = onnx_models.every_tensor(path, nchw)
    computed = forward(bundle, nchw.transpose(0, 2, 3, 1))
    recorded = bundle.manifest["source"]["onnx_layers"]
    for layer in bundle.layers[1:]:
        if layer.name in recorded:
            onnx_models.assert_close(
                computed[layer.name], onnx_models.expected_activations(bundle, layer, values), layer.name
            )


def test_external_data_and_a_batch_fixed_to_one_import_alike(tmp_path):
    """torch.onnx.export without dynamic_axes fixes the batch to 1; big models keep weights beside the file."""
    network = onnx_models.small_cnn()
    model = onnx_models.to_onnx(network)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].ClearField("dim_param")
        value.type.tensor_type.shape.dim[0].dim_value = 1
    folder = tmp_path / "fixed"
    folder.mkdir()
    onnx.save(model, folder / "fixed.onnx", save_as_external_data=True, location="fixed.data", size_threshold=0)
    write_samples(folder, network, count=5)
    fixed = load_bundle(extract(folder / "fixed.onnx", folder / "fixed.bcnn.npz", log=quiet))
    _path, _nchw, dynamic = imported(tmp_path, network)
    assert fixed.sample_count == 5
    for layer in dynamic.layers:
        np.testing.assert_allclose(
            fixed.layer_activations(layer.name)[:4], dynamic.layer_activations(layer.name), rtol=0, atol=1e-6
        )


def per_epoch_run(folder):
    """What the three lines a PyTorch user adds to a training loop leave: epoch_001.onnx ... and a history."""
    run = folder / "run"
    run.mkdir()
    networks = {epoch: onnx_models.small_cnn(seed=epoch) for epoch in (1, 2, 3)}
    for epoch, network in networks.items():
        onnx_models.save_onnx(network, run / f"epoch_{epoch:03d}.onnx")
    with open(run / "history.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "loss", "accuracy"])
        writer.writerows([[epoch - 1, 2.0 / epoch, 0.3 * epoch] for epoch in networks])  # CSVLogger counts from 0
    write_samples(run, networks[1])
    return run, networks


def test_a_folder_of_per_epoch_exports_is_one_run(tmp_path):
    run, networks = per_epoch_run(tmp_path)
    lines = []
    bundle = load_bundle(extract(run, log=lines.append))
    assert bundle.path == str(run / "run.bcnn.npz") and bundle.epochs == [1, 2, 3]
    np.testing.assert_allclose(bundle.array("metrics/loss"), [2.0, 1.0, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(bundle.array("metrics/accuracy"), [0.3, 0.6, 0.9], rtol=1e-6)
    for epoch, network in networks.items():
        kernel = onnx_models.keras_weights_of(network)["features.0"][0]
        np.testing.assert_array_equal(bundle.weights("features.0", epoch)["kernel"], kernel)
    first, last = bundle.layer_activations("classifier.2", 1), bundle.layer_activations("classifier.2", 3)
    assert not np.allclose(first, last), "each epoch's activations are its own"
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert any("importance: ONNX files carry no gradients" in line for line in lines)


@pytest.mark.bpy
def test_a_per_epoch_onnx_run_animates_like_a_keras_run(blender, tmp_path):
    """Animate Training keys the epochs; at each epoch's frame the cells show that epoch's activations."""
    from scene_readers import drawn_cells

    from blender_cnn.scene.network import build_network

    run, _networks = per_epoch_run(tmp_path)
    bundle = load_bundle(extract(run, log=quiet))
    network = build_network(bundle, sample=1)
    blender.context.view_layer.objects.active = network
    assert blender.ops.bcnn.animate_training(frames_per_epoch=6, hold_frames=2, easing="LINEAR", start_frame=1) == {
        "FINISHED"
    }
    scene = blender.context.scene
    markers = sorted((marker.frame, marker.name) for marker in scene.timeline_markers)
    assert markers == [(1, "epoch 1"), (9, "epoch 2"), (17, "epoch 3")]
    conv = [layer.name for layer in bundle.layers].index("features.0")
    shown = []
    for frame, epoch in ((1, 1), (9, 2), (17, 3)):
        scene.frame_set(frame)
        _centres, cells = drawn_cells(network)
        mine = (cells["layer"] == conv) & (cells["is_summary"] == 0)
        order = np.lexsort((cells["col"][mine], cells["row"][mine], cells["channel"][mine]))
        expected = bundle.activations("features.0", epoch, 1).transpose(2, 0, 1).ravel()
        np.testing.assert_allclose(cells["activation"][mine][order], expected, rtol=1e-5, atol=1e-6)
        shown.append(cells["activation"][mine][order])
    assert not np.allclose(shown[0], shown[2])


def test_a_run_whose_files_differ_in_structure_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    onnx_models.save_onnx(onnx_models.small_cnn(), run / "epoch_001.onnx")
    onnx_models.save_onnx(onnx_models.small_cnn(flatten="view", name="other"), run / "epoch_002.onnx")
    write_samples(run, onnx_models.small_cnn())
    with pytest.raises(Exception, match="has a different layer structure than epoch_001.onnx"):
        extract(run, log=quiet)


def test_ops_without_a_layer_are_shown_by_their_activations(tmp_path):
    """An op the add-on has no layer for (Cos), and a translation the numpy pass cannot reproduce (a MaxPool
    with ceil_mode on an odd size), stay in the graph as outputs-only layers with onnxruntime's values."""
    weight = onnx.numpy_helper.from_array(np.full((2, 3, 1, 1), 0.5, np.float32), "conv.weight")
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        helper.make_node("Cos", ["c"], ["w"], name="/wave/Cos"),
        helper.make_node(
            "MaxPool", ["w"], ["p"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1
        ),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="/avgpool/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["output"], name="/Flatten"),
    ]
    graph = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 5, 5])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "odd.onnx"
    )
    lines = []
    bundle = load_bundle(extract(tmp_path / "odd.onnx", tmp_path / "odd.bcnn.npz", log=lines.append))
    assert [(layer.name, layer.type) for layer in bundle.layers] == [
        ("input", "InputLayer"),
        ("conv", "Conv2D"),
        ("wave", "onnx.Cos"),
        ("pool", "onnx.MaxPool"),
        ("avgpool", "GlobalAveragePooling2D"),
        ("flatten", "Flatten"),
    ]
    assert bundle.layer("pool").output_shape == (3, 3, 2)
    nchw = bundle.array("samples/inputs").transpose(0, 3, 1, 2)
    values = onnx_models.every_tensor(tmp_path / "odd.onnx", nchw)
    onnx_models.assert_close(bundle.layer_activations("wave"), values["w"].transpose(0, 2, 3, 1), "wave")
    onnx_models.assert_close(bundle.layer_activations("pool"), values["p"].transpose(0, 2, 3, 1), "pool")
    assert any(line.startswith("kept as outputs only") and "pool" in line for line in lines)
    assert any(line.startswith("shown by their activations only") and "wave (onnx.Cos)" in line for line in lines)


def test_relu_then_clip_as_torch_2_0_wrote_relu6_is_one_layer(tmp_path):
    network = onnx_models.inverted_residual()
    model = onnx_models.to_onnx(network)
    clip = next(node for node in model.graph.node if node.op_type == "Clip")
    relu_output = clip.input[0] + "_relu"
    position = list(model.graph.node).index(clip)
    relu = helper.make_node("Relu", [clip.input[0]], [relu_output], name=clip.name.replace("Clip", "Relu"))
    clip.input[0] = relu_output
    model.graph.node.insert(position, relu)
    onnx.save(model, tmp_path / "old.onnx")
    write_samples(tmp_path, network)
    bundle = load_bundle(extract(tmp_path / "old.onnx", tmp_path / "old.bcnn.npz", log=quiet))
    assert [layer.name for layer in bundle.layers] == [spec.name for spec in onnx_models.keras_layers(network)]
    relu6 = bundle.layer("features.0.2")
    assert relu6.type == "ReLU" and relu6.config["max_value"] == 6.0


@pytest.mark.tf
@pytest.mark.parametrize("name", ["small_cnn", "resnet_block", "inverted_residual"])
def test_the_keras_twin_gives_the_same_bundle(tmp_path, name):
    network = onnx_models.NETWORKS[name]()
    _path, _nchw, from_onnx = imported(tmp_path, network)
    onnx_models.to_keras(network).save(tmp_path / "twin.keras")
    from_keras = load_bundle(
        extract(tmp_path / "twin.keras", tmp_path / "twin.bcnn.npz", samples=tmp_path / "samples.npz", log=quiet)
    )
    # Both orders run every layer after its inputs; branches may come in another order (torch's node order).
    assert {layer.name: (layer.type, layer.inputs, layer.output_shape) for layer in from_onnx.layers} == {
        layer.name: (layer.type, layer.inputs, layer.output_shape) for layer in from_keras.layers
    }
    for layer in from_onnx.layers:
        onnx_models.assert_close(
            from_onnx.layer_activations(layer.name), from_keras.layer_activations(layer.name), layer.name
        )
        keras_config = from_keras.layer(layer.name).config
        assert {key: keras_config[key] for key in layer.config} == layer.config, layer.name
    onnx_models.assert_close(
        from_onnx.array("samples/predictions"), from_keras.array("samples/predictions"), "predictions"
    )


@pytest.mark.tf
@pytest.mark.bpy
def test_the_keras_twin_gives_the_same_scene(blender, tmp_path):
    from scene_readers import drawn_cells

    from blender_cnn.scene.network import build_network

    network = onnx_models.resnet_block()
    _path, _nchw, from_onnx = imported(tmp_path, network)
    onnx_models.to_keras(network).save(tmp_path / "twin.keras")
    from_keras = load_bundle(
        extract(tmp_path / "twin.keras", tmp_path / "twin.bcnn.npz", samples=tmp_path / "samples.npz", log=quiet)
    )
    drawn = {}
    for kind, bundle in (("onnx", from_onnx), ("keras", from_keras)):
        centres, cells = drawn_cells(build_network(bundle, sample=1))
        # Cells by (layer name, channel, row, col): the two bundles may list parallel branches in another order.
        names = np.array([bundle.layers[index].name for index in cells["layer"]])
        order = np.lexsort((cells["col"], cells["row"], cells["channel"], names))
        drawn[kind] = names[order], centres[order], {key: values[order] for key, values in cells.items()}
    (onnx_names, onnx_centres, onnx_cells), (keras_names, keras_centres, keras_cells) = drawn["onnx"], drawn["keras"]
    assert len(onnx_centres) > 100
    np.testing.assert_array_equal(onnx_names, keras_names)
    np.testing.assert_allclose(onnx_centres, keras_centres, atol=1e-5)
    for attribute in ("channel", "row", "col"):
        np.testing.assert_array_equal(onnx_cells[attribute], keras_cells[attribute])
    np.testing.assert_allclose(onnx_cells["activation"], keras_cells["activation"], atol=1e-5)
    np.testing.assert_allclose(onnx_cells["cell_color"], keras_cells["cell_color"], atol=1e-4)


@pytest.mark.bpy
def test_file_import_reads_an_onnx_file_and_a_bad_one_leaves_the_scene(blender, tmp_path, bundle_folder):
    network = onnx_models.inverted_residual()
    onnx_models.save_onnx(network, tmp_path / "mobile.onnx")
    write_samples(tmp_path, network)
    before = sorted(obj.name for obj in blender.data.objects)
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07\x12")
    with pytest.raises(RuntimeError, match="broken.onnx: is not an ONNX model|broken.onnx: holds no ONNX graph"):
        blender.ops.bcnn.import_checkpoint(filepath=str(tmp_path / "broken.onnx"))
    assert sorted(obj.name for obj in blender.data.objects) == before

    assert blender.ops.bcnn.import_checkpoint(filepath=str(tmp_path / "mobile.onnx")) == {"FINISHED"}
    imported_network = blender.context.view_layer.objects.active
    bundle = load_bundle(imported_network["blender_cnn_bundle"])
    assert bundle.manifest["source"]["kind"] == "onnx"
    assert "features.1.conv.1.0" in [layer.name for layer in bundle.layers]


def test_onnx_sources_need_onnxruntime_not_tensorflow(tmp_path, monkeypatch):
    """Blender's Python with neither gets told what to install for this file, not TensorFlow."""
    from blender_cnn.core import jobs
    from blender_cnn.extract.extraction import start_extraction

    onnx_models.save_onnx(onnx_models.small_cnn(), tmp_path / "net.onnx")
    monkeypatch.setattr(jobs, "modules_in_this_python", lambda _modules: False)
    with pytest.raises(Exception, match="onnx and onnxruntime are not importable in Blender's Python") as caught:
        start_extraction(tmp_path / "net.onnx", tmp_path / "out", python_path="")
    assert "onnx==" in str(caught.value) and "onnxruntime==" in str(caught.value)
    monkeypatch.undo()
    job = start_extraction(tmp_path / "net.onnx", tmp_path / "out")
    assert os.path.isfile(job.wait()) and job.state == jobs.FINISHED


@pytest.mark.parametrize("preset", ["digits_cnn", "lenet5", "tiny_vgg"])
def test_a_designs_onnx_export_imports_back_as_the_design(tmp_path, preset):
    """Export to ONNX, then import: the design's weights and its numpy bundle's outputs come back."""
    import json

    from blender_cnn.core.design import design_bundle, random_weights
    from blender_cnn.extract.onnx_export import export_onnx

    design = json.loads((REPO / "presets" / f"{preset}.json").read_text())
    designed = load_bundle(design_bundle(design, tmp_path / "design.bcnn.npz", seed=4))
    export_onnx(design, tmp_path / "design.onnx", seed=4)
    samples = designed.array("samples/inputs")
    np.savez(tmp_path / "samples.npz", inputs=samples, labels=np.zeros(len(samples), np.int32))
    imported_bundle = load_bundle(extract(tmp_path / "design.onnx", tmp_path / "back.bcnn.npz", log=quiet))
    assert imported_bundle.manifest["unrecognized_layers"] == []
    weights = random_weights(design, seed=4)
    weighted = [layer.name for layer in imported_bundle.layers if layer.weights]
    for layer_name, arrays in weights.items():
        # A layer with an activation argument comes back as the layer and its activation: PyTorch's two modules.
        back = next(name for name in weighted if name == layer_name or name.startswith(layer_name + "."))
        for weight_name, values in arrays.items():
            np.testing.assert_allclose(imported_bundle.weights(back)[weight_name], values, rtol=0, atol=1e-7)
    onnx_models.assert_close(
        imported_bundle.array("samples/predictions")[0], designed.array("samples/predictions")[0], "predictions"
    )
