"""The ONNX fixtures (tests/onnx_models.py) are what they claim: valid graphs onnxruntime runs, named as PyTorch's
TorchScript exporter names them, and Keras twins computing the same function. Keras is imported only inside the
``tf`` tests."""

from collections import Counter

import numpy as np
import onnx
import onnx_models as om
import pytest
from onnx import numpy_helper

NAMES = list(om.NETWORKS)

NODE_NAMES = {
    "small_cnn": [
        "/features/features.0/Conv",
        "/features/features.1/Relu",
        "/features/features.2/MaxPool",
        "/features/features.3/Conv",
        "/features/features.4/Relu",
        "/features/features.5/MaxPool",
        "/Flatten",
        "/classifier/classifier.0/Gemm",
        "/classifier/classifier.1/Relu",
        "/classifier/classifier.2/Gemm",
    ],
    "resnet_block": [
        "/conv1/Conv",
        "/bn1/BatchNormalization",
        "/relu/Relu",
        "/maxpool/MaxPool",
        "/layer1/layer1.0/conv1/Conv",
        "/layer1/layer1.0/bn1/BatchNormalization",
        "/layer1/layer1.0/relu/Relu",
        "/layer1/layer1.0/conv2/Conv",
        "/layer1/layer1.0/bn2/BatchNormalization",
        "/layer1/layer1.0/downsample/downsample.0/Conv",
        "/layer1/layer1.0/downsample/downsample.1/BatchNormalization",
        "/layer1/layer1.0/Add",
        "/layer1/layer1.0/relu_1/Relu",
        "/avgpool/GlobalAveragePool",
        "/Flatten",
        "/fc/Gemm",
    ],
    "inverted_residual": [
        "/features/features.0/features.0.0/Conv",
        "/features/features.0/features.0.1/BatchNormalization",
        "/features/features.0/features.0.2/Constant",
        "/features/features.0/features.0.2/Constant_1",
        "/features/features.0/features.0.2/Clip",
        "/features/features.1/conv/conv.0/conv.0.0/Conv",
        "/features/features.1/conv/conv.0/conv.0.1/BatchNormalization",
        "/features/features.1/conv/conv.0/conv.0.2/Constant",
        "/features/features.1/conv/conv.0/conv.0.2/Constant_1",
        "/features/features.1/conv/conv.0/conv.0.2/Clip",
        "/features/features.1/conv/conv.1/conv.1.0/Conv",
        "/features/features.1/conv/conv.1/conv.1.1/BatchNormalization",
        "/features/features.1/conv/conv.1/conv.1.2/Constant",
        "/features/features.1/conv/conv.1/conv.1.2/Constant_1",
        "/features/features.1/conv/conv.1/conv.1.2/Clip",
        "/features/features.1/conv/conv.2/Conv",
        "/features/features.1/conv/conv.3/BatchNormalization",
        "/features/features.1/Add",
        "/features/features.2/Sigmoid",
        "/features/features.2/Mul",
        "/features/features.3/HardSwish",
        "/avgpool/GlobalAveragePool",
        "/Flatten",
        "/classifier/classifier.0/Gemm",
        "/softmax/Softmax",
    ],
}
VIEW_FLATTEN = ["/Shape", "/Constant", "/Gather", "/Constant_1", "/Unsqueeze", "/Constant_2", "/Concat", "/Reshape"]
NODE_NAMES["small_cnn_view"] = [
    name for flatten in NODE_NAMES["small_cnn"] for name in (VIEW_FLATTEN if flatten == "/Flatten" else [flatten])
]
NODE_NAMES["small_cnn_matmul"] = [
    name
    for gemm in NODE_NAMES["small_cnn"]
    for name in (
        ["/classifier/classifier.0/MatMul", "/classifier/classifier.0/Add"]
        if gemm == "/classifier/classifier.0/Gemm"
        else [gemm]
    )
]
for _name in ("resnet_block", "inverted_residual"):
    NODE_NAMES[f"{_name}_fused"] = [name for name in NODE_NAMES[_name] if not name.endswith("/BatchNormalization")]


def _bn(module):
    return [f"{module}.{key}" for key in ("weight", "bias", "running_mean", "running_var")]


SMALL_CNN_INITIALIZERS = ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias"]
INITIALIZER_NAMES = {
    "small_cnn": SMALL_CNN_INITIALIZERS
    + ["classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"],
    "small_cnn_view": SMALL_CNN_INITIALIZERS
    + ["classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"],
    "small_cnn_matmul": SMALL_CNN_INITIALIZERS
    + ["onnx::MatMul_57", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"],
    "resnet_block": ["conv1.weight", *_bn("bn1"), "layer1.0.conv1.weight", *_bn("layer1.0.bn1")]
    + ["layer1.0.conv2.weight", *_bn("layer1.0.bn2"), "layer1.0.downsample.0.weight", *_bn("layer1.0.downsample.1")]
    + ["fc.weight", "fc.bias"],
    "resnet_block_fused": [f"onnx::Conv_{n}" for n in (60, 61, 63, 64, 66, 67, 69, 70)] + ["fc.weight", "fc.bias"],
    "inverted_residual": ["features.0.0.weight", *_bn("features.0.1")]
    + ["features.1.conv.0.0.weight", *_bn("features.1.conv.0.1"), "features.1.conv.1.0.weight"]
    + [*_bn("features.1.conv.1.1"), "features.1.conv.2.weight", *_bn("features.1.conv.3")]
    + ["classifier.0.weight", "classifier.0.bias"],
    "inverted_residual_fused": [f"onnx::Conv_{n}" for n in (60, 61, 63, 64, 66, 67, 69, 70)]
    + ["classifier.0.weight", "classifier.0.bias"],
}

# The importer's layer names (onnx_models' docstring); "input" is the graph input's layer.
LAYER_NAMES = {
    "small_cnn": ["features.0", "features.1", "features.2", "features.3", "features.4", "features.5", "flatten"]
    + ["classifier.0", "classifier.1", "classifier.2"],
    "resnet_block": ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu"]
    + ["layer1.0.conv2", "layer1.0.bn2", "layer1.0.downsample.0", "layer1.0.downsample.1", "layer1.0.add"]
    + ["layer1.0.relu_1", "avgpool", "flatten", "fc"],
    "inverted_residual": ["features.0.0", "features.0.1", "features.0.2", "features.1.conv.0.0", "features.1.conv.0.1"]
    + ["features.1.conv.0.2", "features.1.conv.1.0", "features.1.conv.1.1", "features.1.conv.1.2"]
    + ["features.1.conv.2", "features.1.conv.3", "features.1.add", "features.2", "features.3", "avgpool"]
    + ["flatten", "classifier.0", "softmax"],
}
LAYER_NAMES["small_cnn_view"] = [name if name != "flatten" else "reshape" for name in LAYER_NAMES["small_cnn"]]
LAYER_NAMES["small_cnn_matmul"] = LAYER_NAMES["small_cnn"]
LAYER_NAMES["resnet_block_fused"] = [
    name for name in LAYER_NAMES["resnet_block"] if "bn" not in name and "downsample.1" not in name
]
LAYER_NAMES["inverted_residual_fused"] = [
    name
    for name in LAYER_NAMES["inverted_residual"]
    if name not in ("features.0.1", "features.1.conv.0.1", "features.1.conv.1.1", "features.1.conv.3")
]


def module_path(node_name):
    """The naming rules' step 1, written out: the module path of a node's name."""
    path = ""
    for scope in [scope for scope in node_name.split("/") if scope][:-1]:
        if not path:
            path = scope
        elif "." in scope:
            path = f"{path}.{scope.rsplit('.', 1)[1]}"
        else:
            path = f"{path}.{scope}"
    return path


# Nodes that in these graphs always belong to the layer of a node after them (a Constant to its reader, Sigmoid to
# its Mul, MatMul to its Add, the view's shape arithmetic to its Reshape).
FOLDED_NODES = ("Constant", "Shape", "Gather", "Unsqueeze", "Concat", "Sigmoid", "MatMul")


def rule_names(model):
    """The naming rules' steps 2 and 3, written out: the layer names the importer derives from a graph."""
    units = [(module_path(node.name), node.op_type) for node in model.graph.node if node.op_type not in FOLDED_NODES]
    counts = Counter(path for path, _ in units if path)
    prefixes = {".".join(path.split(".")[:end]) for path, _ in units for end in range(1, len(path.split(".")))}
    names, used = [], Counter()
    for path, op in units:
        if path and counts[path] == 1 and path not in prefixes:
            base = path
        else:
            base = f"{path}.{op.lower()}" if path else op.lower()
        name = base
        while name in names:
            used[base] += 1
            name = f"{base}_{used[base]}"
        names.append(name)
    return names


@pytest.fixture(scope="module", params=NAMES)
def network(request):
    return om.NETWORKS[request.param]()


@pytest.fixture(scope="module")
def model(network):
    return om.to_onnx(network)


def test_valid_and_runs(network, model):
    onnx.checker.check_model(model, full_check=True)
    for batch in (1, 3):
        outputs = om.run_onnx(model, om.sample_inputs(network, batch))
        assert outputs.shape == (batch, om.CLASSES) and np.isfinite(outputs).all()
        assert np.ptp(outputs) > 0.1  # not a constant, which would hide a wrong layer


def test_as_torch_writes_the_header(network, model):
    assert model.ir_version == 8
    assert [(opset.domain, opset.version) for opset in model.opset_import] == [("", 17)]
    assert (model.producer_name, model.graph.name) == ("pytorch", "main_graph")
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    dims = [dim.dim_param or dim.dim_value for dim in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "input" and dims == ["batch", 3, 16, 16]
    dims = [dim.dim_param or dim.dim_value for dim in graph_output.type.tensor_type.shape.dim]
    assert graph_output.name == "output" and dims == ["batch", 10]


def test_torch_names(network, model):
    assert [node.name for node in model.graph.node] == NODE_NAMES[network.name]
    assert [tensor.name for tensor in model.graph.initializer] == INITIALIZER_NAMES[network.name]
    for node in model.graph.node:
        (output,) = node.output
        assert output == ("output" if node is model.graph.node[-1] else f"{node.name}_output_0")


def test_layer_names_follow_the_rules(network, model):
    assert [layer.name for layer in network.layers] == LAYER_NAMES[network.name]
    assert rule_names(model) == LAYER_NAMES[network.name]
    twin_names = list(om.keras_weights_of(network))
    assert [name for name in twin_names if not name.endswith(".pad")] == ["input", *LAYER_NAMES[network.name]]
    for index, name in enumerate(twin_names):
        if name.endswith(".pad"):
            assert twin_names[index + 1] == name.removesuffix(".pad")


def test_torch_module_paths():
    assert om.torch_scope("features.1.conv.0.0") == "/features/features.1/conv/conv.0/conv.0.0"
    assert om.torch_scope("layer1.0.relu", call=1) == "/layer1/layer1.0/relu_1"
    assert om.torch_scope("0.1") == "/0/0.1"
    for name in NAMES:
        network = om.NETWORKS[name]()
        for layer in network.layers:
            # A second call's scope carries its "_1", so its path does too.
            expected = layer.name if layer.scope.endswith("_1") else layer.module
            assert module_path(f"{layer.scope}/Op") == expected


def _attributes(node):
    return {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}


def test_attributes_as_torch_writes_them():
    nodes = {node.name: node for node in om.to_onnx(om.resnet_block()).graph.node}
    assert _attributes(nodes["/conv1/Conv"]) == {
        "dilations": [1, 1], "group": 1, "kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]
    }  # fmt: skip
    assert _attributes(nodes["/maxpool/MaxPool"]) == {
        "ceil_mode": 0,
        "kernel_shape": [3, 3],
        "pads": [1, 1, 1, 1],
        "strides": [2, 2],
    }
    bn = _attributes(nodes["/bn1/BatchNormalization"])
    assert bn == pytest.approx({"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0})
    assert _attributes(nodes["/fc/Gemm"]) == {"alpha": 1.0, "beta": 1.0, "transB": 1}
    assert _attributes(nodes["/Flatten"]) == {"axis": 1}
    assert list(nodes["/layer1/layer1.0/Add"].input) == [
        "/layer1/layer1.0/bn2/BatchNormalization_output_0",
        "/layer1/layer1.0/downsample/downsample.1/BatchNormalization_output_0",
    ]

    graph = om.to_onnx(om.inverted_residual()).graph
    nodes = {node.name: node for node in graph.node}
    depthwise = _attributes(nodes["/features/features.1/conv/conv.1/conv.1.0/Conv"])
    assert depthwise["group"] == 32 and depthwise["pads"] == [1, 1, 1, 1]
    clip = nodes["/features/features.1/conv/conv.1/conv.1.2/Clip"]
    constants = {
        node.output[0]: numpy_helper.to_array(_attributes(node)["value"])
        for node in graph.node
        if node.op_type == "Constant"
    }
    low, high = (constants[name] for name in clip.input[1:])
    assert low.shape == high.shape == () and (float(low), float(high)) == (0.0, 6.0) and low.dtype == np.float32
    mul = nodes["/features/features.2/Mul"]
    assert list(mul.input) == ["/features/features.1/Add_output_0", "/features/features.2/Sigmoid_output_0"]
    assert _attributes(nodes["/softmax/Softmax"]) == {"axis": 1}

    nodes = {node.name: node for node in om.to_onnx(om.small_cnn_view()).graph.node}
    assert _attributes(nodes["/Reshape"]) == {"allowzero": 0} and _attributes(nodes["/Gather"]) == {"axis": 0}
    nodes = {node.name: node for node in om.to_onnx(om.small_cnn_matmul()).graph.node}
    assert list(nodes["/classifier/classifier.0/Add"].input) == [
        "classifier.0.bias",
        "/classifier/classifier.0/MatMul_output_0",
    ]


def test_weights_in_keras_layout_become_onnx_layout():
    network = om.small_cnn_matmul()
    initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in om.to_onnx(network).graph.initializer}
    kernel = network.layer("features.3").weights["kernel"]
    assert kernel.shape == (3, 3, 8, 16)
    np.testing.assert_array_equal(initializers["features.3.weight"], kernel.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(initializers["onnx::MatMul_57"], network.layer("classifier.0").weights["kernel"])
    np.testing.assert_array_equal(
        initializers["classifier.2.weight"], network.layer("classifier.2").weights["kernel"].T
    )

    network = om.inverted_residual()
    initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in om.to_onnx(network).graph.initializer}
    depthwise = network.layer("features.1.conv.1.0").weights["depthwise_kernel"]
    assert depthwise.shape == (3, 3, 32, 1) and initializers["features.1.conv.1.0.weight"].shape == (32, 1, 3, 3)
    np.testing.assert_array_equal(
        initializers["features.1.conv.1.0.weight"][:, 0], depthwise[..., 0].transpose(2, 0, 1)
    )
    bn = network.layer("features.1.conv.1.1").weights
    assert list(bn) == ["gamma", "beta", "moving_mean", "moving_variance"] and (bn["moving_variance"] > 0).all()
    np.testing.assert_array_equal(initializers["features.1.conv.1.1.running_var"], bn["moving_variance"])


def test_keras_weights_permute_the_flattened_rows():
    network = om.small_cnn()
    kernel = network.layer("classifier.0").weights["kernel"]
    twin_kernel, bias = om.keras_weights_of(network)["classifier.0"]
    # Row (c, h, w) of PyTorch's flatten of the 16x4x4 map is row (h, w, c) of Keras'.
    for c, h, w in [(0, 0, 1), (5, 2, 3), (15, 3, 3)]:
        np.testing.assert_array_equal(twin_kernel[h * 4 * 16 + w * 16 + c], kernel[c * 16 + h * 4 + w])
    np.testing.assert_array_equal(bias, network.layer("classifier.0").weights["bias"])
    # After a global pool the map is 1x1: nothing to permute.
    network = om.resnet_block()
    np.testing.assert_array_equal(om.keras_weights_of(network)["fc"][0], network.layer("fc").weights["kernel"])


@pytest.mark.parametrize(
    ("variant", "reference"),
    [
        ("small_cnn_view", "small_cnn"),
        ("small_cnn_matmul", "small_cnn"),
        ("resnet_block_fused", "resnet_block"),
        ("inverted_residual_fused", "inverted_residual"),
    ],
)
def test_variants_compute_the_same_function(variant, reference):
    inputs = om.sample_inputs(om.NETWORKS[reference]())
    expected = om.run_onnx(om.NETWORKS[reference](), inputs)
    got = om.run_onnx(om.NETWORKS[variant](), inputs)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_external_data(tmp_path):
    network = om.resnet_block()
    inline = om.save_onnx(network, tmp_path / "inline.onnx")
    path = om.save_onnx(network, tmp_path / "resnet.onnx", external_data=True)
    weight_bytes = sum(numpy_helper.to_array(tensor).nbytes for tensor in onnx.load(str(inline)).graph.initializer)
    assert (tmp_path / "resnet.onnx.data").stat().st_size >= weight_bytes
    onnx.checker.check_model(str(path), full_check=True)
    header = onnx.load(str(path), load_external_data=False)
    assert all(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in header.graph.initializer)
    inputs = om.sample_inputs(network)
    np.testing.assert_array_equal(om.run_onnx(path, inputs), om.run_onnx(inline, inputs))


def test_value_info_option():
    model = om.to_onnx(om.inverted_residual(), value_info=True)
    shapes = {
        info.name: [dim.dim_param or dim.dim_value for dim in info.type.tensor_type.shape.dim]
        for info in model.graph.value_info
    }
    assert shapes["/features/features.1/conv/conv.0/conv.0.0/Conv_output_0"] == ["batch", 32, 16, 16]
    assert shapes["/Flatten_output_0"] == ["batch", 8]


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.mark.tf
def test_keras_twin_matches_onnxruntime(keras, network, model):
    twin = om.to_keras(network)
    expected_weights = om.keras_weights_of(network)
    assert sorted(layer.name for layer in twin.layers) == sorted(expected_weights)
    for layer in twin.layers:
        weights = layer.get_weights()
        assert len(weights) == len(expected_weights[layer.name]), layer.name
        for got, expected in zip(weights, expected_weights[layer.name]):
            np.testing.assert_array_equal(got, expected)
    inputs = om.sample_inputs(network, 5, seed=3)
    expected = om.run_onnx(model, inputs)
    got = np.asarray(twin(inputs.transpose(0, 2, 3, 1), training=False))
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.tf
def test_keras_twin_layers(keras):
    twin = om.to_keras(om.resnet_block())
    # torch's symmetric pad 1 at stride 2 is not TensorFlow's "same" (which pads only the bottom and right there).
    for name in ("conv1", "maxpool", "layer1.0.conv1"):
        assert twin.get_layer(f"{name}.pad").get_config()["padding"] == ((1, 1), (1, 1))
        assert twin.get_layer(name).get_config()["padding"] == "valid"
    assert twin.get_layer("layer1.0.conv2").get_config()["padding"] == "same"
    assert twin.get_layer("layer1.0.downsample.0").get_config()["padding"] == "valid"
    assert type(twin.get_layer("layer1.0.add")).__name__ == "Add"
    assert twin.get_layer("avgpool").get_config()["keepdims"] is True

    twin = om.to_keras(om.inverted_residual())
    assert type(twin.get_layer("features.1.conv.1.0")).__name__ == "DepthwiseConv2D"
    assert twin.get_layer("features.1.conv.1.2").get_config()["max_value"] == 6.0
    assert twin.get_layer("features.2").get_config()["activation"] == "silu"
    assert twin.get_layer("features.3").get_config()["activation"] == "hard_silu"
    assert twin.get_layer("features.0.1").get_config()["epsilon"] == pytest.approx(1e-5)


def test_resnet50_is_torchvisions_as_its_eval_export_writes_it():
    """Not one of NETWORKS (too big for every test); its structure checked once, and one forward pass."""
    network = om.resnet50()
    model = om.to_onnx(network)
    onnx.checker.check_model(model)
    dims = [dim.dim_param or dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 224, 224] and network.classes == 1000
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops == {"Conv": 53, "Relu": 49, "Add": 16, "MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
    names = [node.name for node in model.graph.node]
    assert names[:11] == [
        "/conv1/Conv",
        "/relu/Relu",
        "/maxpool/MaxPool",
        "/layer1/layer1.0/conv1/Conv",
        "/layer1/layer1.0/relu/Relu",
        "/layer1/layer1.0/conv2/Conv",
        "/layer1/layer1.0/relu_1/Relu",
        "/layer1/layer1.0/conv3/Conv",
        "/layer1/layer1.0/downsample/downsample.0/Conv",
        "/layer1/layer1.0/Add",
        "/layer1/layer1.0/relu_2/Relu",
    ]
    assert names[-6:] == [
        "/layer4/layer4.2/conv3/Conv",
        "/layer4/layer4.2/Add",
        "/layer4/layer4.2/relu_2/Relu",
        "/avgpool/GlobalAveragePool",
        "/Flatten",
        "/fc/Gemm",
    ]
    downsampled = [name.split("/")[2] for name in names if "downsample" in name]
    assert downsampled == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]
    nodes = {node.name: node for node in model.graph.node}
    # v1.5: the stride sits on the 3x3 conv2, not on conv1.
    assert _attributes(nodes["/layer2/layer2.0/conv2/Conv"])["strides"] == [2, 2]
    assert _attributes(nodes["/layer2/layer2.0/conv1/Conv"])["strides"] == [1, 1]
    assert _attributes(nodes["/conv1/Conv"])["pads"] == [3, 3, 3, 3]
    assert [layer.name for layer in network.layers] == rule_names(model)
    weights = [numpy_helper.to_array(tensor) for tensor in model.graph.initializer]
    # torchvision's 25,557,032 parameters less the 26,560 BatchNormalization scales folded into the convs.
    assert sum(weight.size for weight in weights) == 25_557_032 - 26_560
    assert [tensor.name for tensor in model.graph.initializer][-2:] == ["fc.weight", "fc.bias"]
    outputs = om.run_onnx(model, om.sample_inputs(network, 1))
    assert outputs.shape == (1, 1000) and np.isfinite(outputs).all() and 0.1 < outputs.std() < 100
