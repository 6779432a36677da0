"""The network designer's core: shapes, parameter counts and problems of a design, random weights, a bundle.

Shapes, parameter counts, configs and weights are compared with the Keras
models ``extract.keras_models.build_model`` makes from the same designs.
"""

import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from blender_cnn.core import design as designer
from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.forward import forward
from blender_cnn.core.presets import check_preset, load_design
from blender_cnn.extract.keras_models import build_model

PRESETS = Path(__file__).resolve().parent.parent / "presets"
ALL_PRESETS = ["lenet5", "mlp_784_81_49_10", "tiny_vgg", "vgg16", "digits_cnn", "cifar10_grey"]

# Every designable layer type, several settings of each, and a branching graph (Add, Concatenate).
ZOO = {
    "name": "zoo",
    "input_shape": [16, 16, 3],
    "class_names": [str(n) for n in range(10)],
    "layers": [
        {"type": "Rescaling", "name": "rescale", "scale": 0.5, "offset": 0.25},
        {"type": "ZeroPadding2D", "name": "pad", "padding": [[1, 2], [0, 1]]},
        {
            "type": "Conv2D",
            "name": "conv_a",
            "filters": 8,
            "kernel_size": [3, 5],
            "strides": 2,
            "padding": "same",
            "use_bias": False,
        },
        {"type": "BatchNormalization", "name": "bn"},
        {"type": "ReLU", "name": "relu", "max_value": 6.0},
        {
            "type": "DepthwiseConv2D",
            "name": "depthwise",
            "kernel_size": 3,
            "depth_multiplier": 2,
            "padding": "same",
            "activation": "relu",
        },
        {"type": "SeparableConv2D", "name": "separable", "filters": 8, "kernel_size": 3, "dilation_rate": 2},
        {"type": "Conv2D", "name": "grouped", "filters": 8, "kernel_size": 1, "groups": 2, "activation": "tanh"},
        {"type": "Add", "name": "add", "inputs": ["separable", "grouped"]},
        {"type": "LeakyReLU", "name": "leaky", "negative_slope": 0.1},
        {"type": "Conv2DTranspose", "name": "up_valid", "filters": 4, "kernel_size": 3, "strides": 2},
        {"type": "Conv2D", "name": "conv_c", "filters": 2, "kernel_size": 3, "padding": "same"},
        {"type": "Concatenate", "name": "concat", "inputs": ["up_valid", "conv_c"]},
        {
            "type": "Conv2DTranspose",
            "name": "up_same",
            "filters": 3,
            "kernel_size": 4,
            "strides": 2,
            "padding": "same",
            "output_padding": 1,
        },
        {"type": "MaxPooling2D", "name": "max_pool", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "AveragePooling2D", "name": "avg_pool", "pool_size": 2},
        {"type": "Activation", "name": "sigmoid", "activation": "sigmoid"},
        {"type": "Dropout", "name": "dropout", "rate": 0.25},
        {"type": "Softmax", "name": "softmax"},
        {"type": "GlobalAveragePooling2D", "name": "gap", "keepdims": True, "inputs": ["dropout"]},
        {"type": "GlobalMaxPooling2D", "name": "gmp", "inputs": ["softmax"]},
        {"type": "Flatten", "name": "flat", "inputs": ["gap"]},
        {"type": "Concatenate", "name": "joined", "inputs": ["flat", "gmp"]},
        {"type": "BatchNormalization", "name": "bn_flat", "center": False, "scale": False},
        {"type": "Reshape", "name": "reshape", "target_shape": [2, -1]},
        {"type": "Flatten", "name": "flat2"},
        {"type": "Dense", "name": "output", "units": 10, "activation": "softmax"},
    ],
}

SMALL = {  # valid; the invalid cases below change it
    "name": "small",
    "input_shape": [8, 8, 1],
    "class_names": ["a", "b", "c"],
    "layers": [
        {"type": "Conv2D", "name": "conv1", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D", "name": "pool1", "pool_size": 2},
        {"type": "Flatten", "name": "flatten"},
        {"type": "Dense", "name": "output", "units": 3, "activation": "softmax"},
    ],
}


def preset(name):
    path = PRESETS / f"{name}.json"
    return check_preset(load_design(path), where=str(path))


def keras_layers(model):
    return {layer.name: layer for layer in model.layers}


def assert_matches_keras(design, model):
    from blender_cnn.extract.keras_graph import json_safe_config, named_weights

    infos = designer.validate_design(design)
    layers = keras_layers(model)
    assert tuple(model.inputs[0].shape[1:]) == infos[0].output_shape
    for info in infos[1:]:
        layer = layers[info.name]
        assert info.output_shape == tuple(layer.output.shape[1:]), info.name
        assert info.params == layer.count_params(), info.name
        assert [(name, tuple(v.shape)) for name, v in named_weights(layer)] == list(info.weight_shapes.items()), (
            info.name
        )
        keras_config = json_safe_config(layer.get_config())
        for key, value in info.config.items():
            assert keras_config[key] == value, (info.name, key)
    assert designer.total_parameters(infos) == model.count_params()


# ---------------------------------------------------------------- shapes and parameters against Keras


def test_every_designable_layer_type_is_in_the_zoo():
    assert {layer["type"] for layer in ZOO["layers"]} == set(designer.DESIGNABLE_LAYER_TYPES)


@pytest.mark.tf
def test_shapes_parameters_configs_and_weight_shapes_match_keras_for_every_layer_type(keras):
    assert_matches_keras(ZOO, build_model(ZOO))


@pytest.mark.tf
@pytest.mark.parametrize("name", ALL_PRESETS)
def test_presets_match_their_keras_models(keras, name):  # VGG16 is built (1.5 s), never trained
    assert_matches_keras(preset(name), build_model(preset(name)))


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_every_preset_loads_and_has_no_problems(name):
    loaded = preset(name)
    assert designer.problems(loaded) == {}
    assert designer.validate_design(PRESETS / f"{name}.json")[-1].output_shape == (len(loaded["class_names"]),)


def test_the_classic_networks_have_their_known_sizes():
    totals = {
        name: designer.total_parameters(designer.infer_shapes(preset(name)))
        for name in ("lenet5", "tiny_vgg", "mlp_784_81_49_10", "vgg16")
    }
    # VGG16 with a 10-way head: 138,357,544 - 4096 * 990 - 990.
    assert totals == {"lenet5": 61706, "tiny_vgg": 19920, "mlp_784_81_49_10": 68103, "vgg16": 134301514}
    vgg = designer.infer_shapes(preset("vgg16"))
    assert [info.output_shape for info in vgg if info.name == "block5_pool"] == [(7, 7, 512)]
    assert sum(info.type == "Conv2D" for info in vgg) == 13 and sum(info.type == "MaxPooling2D" for info in vgg) == 5


def test_shapes_need_no_tensorflow():
    code = (
        "import sys; from blender_cnn.core import design, presets; "
        "design.design_bundle(presets.load_design(sys.argv[1]), sys.argv[2]); "
        "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TensorFlow was imported'"
    )
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-c", code, str(PRESETS / "mlp_784_81_49_10.json"), os.path.join(folder, "mlp.bcnn.npz")],
            check=True,
            cwd=PRESETS.parent,
        )


# ---------------------------------------------------------------- problems


def changed(**top):
    return {**copy.deepcopy(SMALL), **top}


def with_layers(*layers, **top):
    return {**copy.deepcopy(SMALL), "layers": list(layers), **top}


CONV1 = SMALL["layers"][0]
POOL1 = SMALL["layers"][1]
FLATTEN = SMALL["layers"][2]
OUTPUT = SMALL["layers"][3]

INVALID = {
    "kernel larger than input": (
        with_layers(CONV1, POOL1, {"type": "Conv2D", "name": "conv3", "filters": 2, "kernel_size": 5}, FLATTEN, OUTPUT),
        "conv3",
        "kernel 5x5 is larger than its 3x3 input with padding 'valid'",
    ),
    "dilated kernel larger than input": (
        with_layers(
            {"type": "Conv2D", "name": "wide", "filters": 2, "kernel_size": 3, "dilation_rate": 4}, FLATTEN, OUTPUT
        ),
        "wide",
        "kernel 3x3 with dilation 4x4 spans 9x9, is larger than its 8x8 input with padding 'valid'",
    ),
    "pool larger than input": (
        with_layers(CONV1, {"type": "MaxPooling2D", "name": "pool_big", "pool_size": 7}, FLATTEN, OUTPUT),
        "pool_big",
        "pool window 7x7 is larger than its 6x6 input with padding 'valid'",
    ),
    "dense after 3D": (
        with_layers(CONV1, {"type": "MaxPooling2D", "name": "pool2", "pool_size": 2}, OUTPUT),
        "output",
        "Dense needs a flat input; add Flatten after pool2 (its output is 3x3x4)",
    ),
    "convolution after flat": (
        with_layers(FLATTEN, {"type": "Conv2D", "name": "conv_flat", "filters": 2, "kernel_size": 1}, OUTPUT),
        "conv_flat",
        "Conv2D needs an image-shaped input (height x width x channels), but flatten's output is 64",
    ),
    "mismatched add": (
        with_layers(CONV1, POOL1, {"type": "Add", "name": "add", "inputs": ["conv1", "pool1"]}, FLATTEN, OUTPUT),
        "add",
        "Add needs inputs of one shape, got conv1 6x6x4, pool1 3x3x4",
    ),
    "add of one input": (
        with_layers(CONV1, {"type": "Add", "name": "add"}, FLATTEN, OUTPUT),
        "add",
        "Add merges two or more inputs, it has 1",
    ),
    "concatenate with other sizes": (
        with_layers(
            CONV1, POOL1, {"type": "Concatenate", "name": "cat", "inputs": ["conv1", "pool1"]}, FLATTEN, OUTPUT
        ),
        "cat",
        "Concatenate joins along channels; its inputs' other sizes must match, got conv1 6x6x4, pool1 3x3x4",
    ),
    "unknown input": (
        with_layers(CONV1, {**POOL1, "inputs": ["conv9"]}, FLATTEN, OUTPUT),
        "pool1",
        "takes input from 'conv9', which is not a layer of the design",
    ),
    "two inputs to a one-input layer": (
        with_layers(
            CONV1,
            {"type": "Conv2D", "name": "conv2", "filters": 4, "kernel_size": 1},
            {**POOL1, "inputs": ["conv1", "conv2"]},
            FLATTEN,
            OUTPUT,
        ),
        "pool1",
        "MaxPooling2D takes one input, it has 2 (conv1, conv2)",
    ),
    "cycle": (
        with_layers(
            {**CONV1, "inputs": ["input"]},
            {"type": "Add", "name": "loop", "inputs": ["conv1", "back"]},
            {"type": "Conv2D", "name": "back", "filters": 4, "kernel_size": 3, "padding": "same"},
            FLATTEN,
            OUTPUT,
        ),
        "loop",
        "is part of a cycle (loop -> back -> loop)",
    ),
    "duplicate name": (
        with_layers(CONV1, POOL1, {**POOL1, "pool_size": 1}, FLATTEN, OUTPUT),
        "pool1",
        "the name 'pool1' is used by more than one layer (#1 and #2)",
    ),
    "a layer named like the input": (
        with_layers({**CONV1, "name": "input"}, FLATTEN, OUTPUT),
        "input",
        "the name 'input' is taken by the network input",
    ),
    "unknown type": (
        with_layers(CONV1, {"type": "Conv3D", "name": "cube", "filters": 2, "kernel_size": 3}, FLATTEN, OUTPUT),
        "cube",
        "'Conv3D' is not a layer type the designer knows; it knows Activation, Add,",
    ),
    "refused type": (
        with_layers({"type": "Lambda", "name": "code", "function": "os.system"}, FLATTEN, OUTPUT),
        "code",
        "'Lambda' is not a layer type the designer knows",
    ),
    "zero filters": (
        with_layers({**CONV1, "filters": 0}, POOL1, FLATTEN, OUTPUT),
        "conv1",
        "filters must be a positive integer, got 0",
    ),
    "negative kernel size": (
        with_layers({**CONV1, "kernel_size": [3, -1]}, POOL1, FLATTEN, OUTPUT),
        "conv1",
        "kernel_size must be a positive integer or two of them, got [3, -1]",
    ),
    "zero pool": (
        with_layers(CONV1, {**POOL1, "pool_size": 0}, FLATTEN, OUTPUT),
        "pool1",
        "pool_size must be a positive integer or two of them, got 0",
    ),
    "zero units": (
        with_layers(FLATTEN, {"type": "Dense", "name": "hidden", "units": 0}, OUTPUT),
        "hidden",
        "units must be a positive integer, got 0",
    ),
    "negative padding": (
        with_layers({"type": "ZeroPadding2D", "name": "pad", "padding": -1}, FLATTEN, OUTPUT),
        "pad",
        "padding must be a non-negative integer, two of them or two pairs, got -1",
    ),
    "missing filters": (
        with_layers({"type": "Conv2D", "name": "conv1", "kernel_size": 3}, FLATTEN, OUTPUT),
        "conv1",
        "needs 'filters', a positive integer",
    ),
    "misspelt argument": (
        with_layers({**CONV1, "filter": 4}, POOL1, FLATTEN, OUTPUT),
        "conv1",
        "Conv2D has no argument 'filter'; it takes filters, kernel_size",
    ),
    "unknown padding": (
        with_layers({**CONV1, "padding": "causal"}, POOL1, FLATTEN, OUTPUT),
        "conv1",
        "padding must be 'valid' or 'same', got 'causal'",
    ),
    "unknown activation": (
        with_layers({**CONV1, "activation": "swishy"}, POOL1, FLATTEN, OUTPUT),
        "conv1",
        "activation 'swishy' is not one the numpy forward pass computes",
    ),
    "strides with dilation": (
        with_layers({**CONV1, "strides": 2, "dilation_rate": 2}, FLATTEN, OUTPUT),
        "conv1",
        "strides 2x2 and dilation_rate 2x2: Keras allows strides above 1 or dilation above 1, not both",
    ),
    "groups that do not divide": (
        with_layers(
            CONV1, {"type": "Conv2D", "name": "grouped", "filters": 6, "kernel_size": 1, "groups": 3}, FLATTEN, OUTPUT
        ),
        "grouped",
        "groups 3 must divide both the input's 4 channels and the 6 filters",
    ),
    "impossible reshape": (
        with_layers(
            FLATTEN, {"type": "Reshape", "name": "shape", "target_shape": [5, 5]}, FLATTEN | {"name": "f2"}, OUTPUT
        ),
        "shape",
        "cannot reshape 64 (64 values) to 5x5",
    ),
    "dropout rate above one": (
        with_layers(FLATTEN, {"type": "Dropout", "name": "drop", "rate": 1.5}, OUTPUT),
        "drop",
        "rate must be a number from 0 to 1, got 1.5",
    ),
    "output of the wrong size": (
        with_layers(CONV1, POOL1, FLATTEN, {**OUTPUT, "units": 4}),
        "output",
        "is the output, which must give one value per class (3), but it outputs 4; end with a Dense of 3 units",
    ),
    "a dangling branch": (
        with_layers(
            CONV1,
            {"type": "Conv2D", "name": "side", "filters": 2, "kernel_size": 1},
            {**POOL1, "inputs": ["conv1"]},
            FLATTEN,
            OUTPUT,
        ),
        "side",
        "leads nowhere: no layer takes its output and it is not the last layer (the output)",
    ),
    "bad input shape": (
        changed(input_shape=[8, 0, 1]),
        "input",
        "'input_shape' must be a list of positive integers, got [8, 0, 1]",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_design_names_the_layer_and_the_reason(case):
    design, layer, reason = INVALID[case]
    found = designer.problems(design)
    assert layer in found, found
    assert reason in found[layer]
    with pytest.raises(BlenderCNNError) as raised:
        designer.validate_design(design)
    assert raised.value.where == f"design {design['name']!r}"
    assert f"{layer}: " in raised.value.message and reason in raised.value.message


def test_a_problem_is_reported_once_where_it_starts_not_on_every_layer_after_it():
    design, _layer, _reason = INVALID["kernel larger than input"]
    assert list(designer.problems(design)) == ["conv3"]
    infos = {info.name: info for info in designer.infer_shapes(design)}
    assert infos["conv3"].output_shape is None and infos["output"].output_shape is None
    assert infos["pool1"].output_shape == (3, 3, 4) and infos["pool1"].ok


def test_every_problem_is_listed_in_one_error_naming_the_file(tmp_path):
    design = with_layers(
        {**CONV1, "filters": 0}, POOL1, {"type": "Conv3D", "name": "cube"}, FLATTEN, OUTPUT, class_names=[]
    )
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(design))
    with pytest.raises(BlenderCNNError) as raised:
        designer.validate_design(path)
    assert raised.value.where == str(path)
    message = raised.value.message
    assert message.startswith("has 3 problems:")
    assert "needs 'class_names', a non-empty list" in message
    assert "conv1: filters must be a positive integer" in message and "cube: 'Conv3D'" in message
    assert designer.problems(design)[designer.DESIGN_KEY] == "needs 'class_names', a non-empty list"


def test_design_level_problems_use_the_preset_rules():
    assert (
        "training 'epochs' must be a positive integer"
        in designer.problems(changed(training={"epochs": -1}))[designer.DESIGN_KEY]
    )
    assert designer.problems({"layers": "none"})[designer.DESIGN_KEY].startswith("needs a 'name'")
    assert designer.problems([1, 2]) == {designer.DESIGN_KEY: "a design must be a JSON object (a dict)"}


def test_a_layer_may_take_input_from_a_layer_listed_after_it_and_sorting_makes_it_a_preset():
    design = with_layers(
        {"type": "Dense", "name": "output", "units": 3, "activation": "softmax", "inputs": ["flatten"]},
        {"type": "Flatten", "name": "flatten", "inputs": ["pool1"]},
        {"type": "MaxPooling2D", "name": "pool1", "inputs": ["conv1"]},
        {**CONV1, "inputs": ["input"]},
    )
    found = designer.problems(design)
    # The last layer is the network's output; here that is conv1, so the Dense leads nowhere.
    assert set(found) == {"output", "conv1"}
    design["layers"].append(design["layers"].pop(0))
    assert designer.problems(design) == {}
    infos = designer.infer_shapes(design)
    assert [info.name for info in infos] == ["input", "conv1", "pool1", "flatten", "output"]
    ordered = designer.sorted_design(design)
    assert [layer["name"] for layer in ordered["layers"]] == ["conv1", "pool1", "flatten", "output"]
    assert designer.total_parameters(designer.validate_design(ordered)) == designer.total_parameters(infos)
    check_preset(ordered)


# ---------------------------------------------------------------- random weights


@pytest.mark.tf
def test_random_weights_are_deterministic_shaped_as_keras_and_initialized_as_keras(keras):
    from blender_cnn.extract.keras_graph import named_weights

    first, again, other = (designer.random_weights(ZOO, seed) for seed in (3, 3, 4))
    model = build_model(ZOO)
    for layer in model.layers[1:]:
        expected = [(name, tuple(v.shape)) for name, v in named_weights(layer)]
        assert [(name, value.shape) for name, value in first.get(layer.name, {}).items()] == expected, layer.name
    for layer, weights in first.items():
        for name, value in weights.items():
            assert value.dtype == np.float32
            np.testing.assert_array_equal(value, again[layer][name])
            if name.endswith("kernel"):
                shape = value.shape
                fan_in, fan_out = (
                    shape if len(shape) == 2 else (shape[-2] * np.prod(shape[:-2]), shape[-1] * np.prod(shape[:-2]))
                )
                limit = np.sqrt(6 / (fan_in + fan_out))
                assert np.abs(value).max() <= limit and np.abs(value).max() > 0.5 * limit
                assert not np.array_equal(value, other[layer][name])
            else:
                assert np.all(value == (1 if name in ("gamma", "moving_variance") else 0)), (layer, name)


def test_editing_one_layer_keeps_the_other_layers_weights():
    hidden = {"type": "Dense", "name": "hidden", "units": 8, "activation": "relu"}
    before = designer.random_weights(with_layers(CONV1, POOL1, FLATTEN, hidden, OUTPUT), seed=1)
    after = designer.random_weights(with_layers({**CONV1, "filters": 5}, POOL1, FLATTEN, hidden, OUTPUT), seed=1)
    assert after["conv1"]["kernel"].shape == (3, 3, 1, 5) and after["hidden"]["kernel"].shape == (45, 8)
    np.testing.assert_array_equal(after["output"]["kernel"], before["output"]["kernel"])


# ---------------------------------------------------------------- bundles


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore:.*unexpected keyword argument '___pyct_anno':DeprecationWarning")  # TF autograph
def test_a_designed_bundle_loads_and_holds_the_forward_pass_of_its_weights(keras, tmp_path):
    path = designer.design_bundle(ZOO, tmp_path / "zoo.bcnn.npz", seed=5)
    bundle = load_bundle(path)
    assert bundle.epochs == [0] and bundle.class_names == ZOO["class_names"] and bundle.sample_count == 3
    infos = designer.infer_shapes(ZOO)
    assert [layer.name for layer in bundle.layers] == [info.name for info in infos]
    assert [layer.output_shape for layer in bundle.layers] == [info.output_shape for info in infos]
    assert [layer.params for layer in bundle.layers] == [info.params for info in infos]
    inputs = bundle.array(bundle.manifest["samples"]["inputs"])
    np.testing.assert_array_equal(inputs, designer.synthetic_inputs(ZOO["input_shape"]))
    assert inputs.min() == 0 and inputs.max() == 1
    np.testing.assert_array_equal(bundle.array("samples/labels"), [-1, -1, -1])
    recomputed = forward(bundle, inputs)
    for layer in bundle.layers:
        np.testing.assert_array_equal(bundle.array(layer.activations)[0], recomputed[layer.name], layer.name)
    predictions = bundle.array("samples/predictions")[0]
    np.testing.assert_allclose(predictions, recomputed["output"], rtol=1e-5)
    weights = designer.random_weights(ZOO, seed=5)
    for name, layer_weights in weights.items():
        for weight_name, value in layer_weights.items():
            np.testing.assert_array_equal(bundle.weights(name, 0)[weight_name], value)

    # Keras, given the same weights, computes the same activations: the configs mean what Keras means.
    model = build_model(ZOO)
    for layer in model.layers[1:]:
        if layer.weights:
            layer.set_weights([weights[layer.name][name] for name in weights[layer.name]])
    probe = keras.Model(model.inputs[0], [layer.output for layer in model.layers[1:]])
    for layer, values in zip(model.layers[1:], probe(inputs, training=False)):
        np.testing.assert_allclose(recomputed[layer.name], np.asarray(values), rtol=1e-4, atol=1e-5, err_msg=layer.name)


def test_a_designed_bundle_takes_given_inputs_and_refuses_wrong_ones(tmp_path):
    image = np.random.default_rng(0).random((8, 8, 1), dtype=np.float32)
    bundle = load_bundle(designer.design_bundle(SMALL, tmp_path / "one.bcnn.npz", inputs=image))
    assert bundle.sample_count == 1
    np.testing.assert_array_equal(bundle.activations("input", 0, 0), image)
    with pytest.raises(BlenderCNNError, match="have shape"):
        designer.design_bundle(SMALL, tmp_path / "bad.bcnn.npz", inputs=np.zeros((2, 7, 7, 1)))
    with pytest.raises(BlenderCNNError, match="conv3: kernel 5x5"):
        designer.design_bundle(INVALID["kernel larger than input"][0], tmp_path / "bad.bcnn.npz")
    assert not (tmp_path / "bad.bcnn.npz").exists()


def test_synthetic_inputs_are_three_patterns_in_0_1():
    images = designer.synthetic_inputs([32, 32, 1])
    assert images.shape == (3, 32, 32, 1) and images.dtype == np.float32
    square, stripe, checker = images[..., 0]
    assert square[16, 16] == 1 and square[0, 0] == 0
    assert stripe[5, 5] == 1 and stripe[0, 31] == 0
    assert checker[0, 0] != checker[0, 4]
    colour = designer.synthetic_inputs([4, 4, 3])
    assert colour.shape == (3, 4, 4, 3) and 0 <= colour.min() and colour.max() <= 1
    assert designer.synthetic_inputs([10]).shape == (3, 10)


@pytest.mark.bpy
def test_a_designed_lenet5_builds_its_scene(blender, tmp_path):
    from scene_readers import drawn_cells

    from blender_cnn.scene.network import build_network

    path = designer.design_bundle(preset("lenet5"), tmp_path / "lenet5.bcnn.npz", seed=0)
    bundle = load_bundle(path)
    network = build_network(path)
    assert network is not None
    _centres, cells = drawn_cells(network)
    for layer in bundle.layers:
        assert int((cells["layer"] == layer.index).sum()) == int(np.prod(layer.output_shape)), layer.name
