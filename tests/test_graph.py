"""Graphs as the scene reads them: units, blocks, lanes, links, the memory budget (numpy only, no Blender)."""

from dataclasses import dataclass

import numpy as np
import pytest

from blender_cnn.core import budget
from blender_cnn.core.bundle import OutputInfo
from blender_cnn.core.graph import block_key, is_chain, plan_graph
from blender_cnn.core.placement import layer_table, row_length


@dataclass(frozen=True)
class Layer:
    index: int
    name: str
    type: str
    inputs: tuple
    output_shape: tuple = (8, 8, 4)
    config: dict = None
    params: int = 0

    @property
    def is_spatial(self):
        return len(self.output_shape) == 3


def network(*specs):
    """Layers from (name, type, inputs) in topological order."""
    return [Layer(index, name, kind, tuple(inputs)) for index, (name, kind, inputs) in enumerate(specs)]


def residual_network():
    """Stem, one residual block with a projection shortcut, one identity block, a head."""
    return network(
        ("input", "InputLayer", ()),
        ("stem_pad", "ZeroPadding2D", ("input",)),
        ("stem_conv", "Conv2D", ("stem_pad",)),
        ("stem_bn", "BatchNormalization", ("stem_conv",)),
        ("stem_relu", "Activation", ("stem_bn",)),
        ("conv2_block1_1_conv", "Conv2D", ("stem_relu",)),
        ("conv2_block1_1_bn", "BatchNormalization", ("conv2_block1_1_conv",)),
        ("conv2_block1_2_conv", "Conv2D", ("conv2_block1_1_bn",)),
        ("conv2_block1_0_conv", "Conv2D", ("stem_relu",)),
        ("conv2_block1_add", "Add", ("conv2_block1_0_conv", "conv2_block1_2_conv")),
        ("conv2_block1_out", "Activation", ("conv2_block1_add",)),
        ("conv2_block2_1_conv", "Conv2D", ("conv2_block1_out",)),
        ("conv2_block2_add", "Add", ("conv2_block1_out", "conv2_block2_1_conv")),
        ("pool", "GlobalAveragePooling2D", ("conv2_block2_add",)),
        ("dense", "Dense", ("pool",)),
    )


def test_plumbing_folds_into_the_layer_it_finishes_and_padding_into_the_layer_that_reads_it():
    plan = plan_graph(residual_network())
    units = [unit.layers for unit in plan.units]
    assert ["stem_pad", "stem_conv", "stem_bn", "stem_relu"] in units
    assert ["conv2_block1_1_conv", "conv2_block1_1_bn"] in units
    assert ["conv2_block1_add", "conv2_block1_out"] in units
    assert plan.shown_layers == [unit[-1] for unit in units]
    # The stem unit is computed by its convolution, not its padding.
    stem = next(unit for unit in plan.units if "stem_conv" in unit.layers)
    assert stem.head == "stem_conv"


def test_plumbing_with_a_second_reader_stays_a_unit_of_its_own():
    layers = network(
        ("input", "InputLayer", ()),
        ("conv", "Conv2D", ("input",)),
        ("bn", "BatchNormalization", ("conv",)),
        ("skip", "Add", ("conv", "bn")),
    )
    plan = plan_graph(layers)
    assert ["bn"] in [unit.layers for unit in plan.units], "conv feeds two layers, so bn cannot fold into it"


def test_residual_blocks_are_found_by_structure_and_name_and_their_shortcut_has_a_lane():
    plan = plan_graph(residual_network())
    assert [block.name for block in plan.blocks] == ["conv2_block1", "conv2_block2"]
    first = plan.blocks[0]
    lanes = {plan.units[index].output: (plan.units[index].column, plan.units[index].lane) for index in first.units}
    assert lanes["conv2_block1_1_bn"] == (0, 0)
    assert lanes["conv2_block1_2_conv"] == (1, 0)
    assert lanes["conv2_block1_0_conv"] == (0, 1), "the projection shortcut stands beside the residual path"
    assert lanes["conv2_block1_out"] == (2, 0)
    assert first.columns == 3 and first.lanes == 2
    # Items: input, stem, two blocks, pool, dense.
    assert [kind for kind, _index in plan.items] == ["unit", "unit", "block", "block", "unit", "unit"]


def test_every_edge_between_units_is_a_link_and_merges_get_all_their_inputs():
    plan = plan_graph(residual_network())
    by_output = {unit.output: unit.index for unit in plan.units}
    links = {(plan.units[source].output, plan.units[target].output) for source, target in plan.links}
    assert ("conv2_block1_0_conv", "conv2_block1_out") in links and ("conv2_block1_2_conv", "conv2_block1_out") in links
    assert ("stem_relu", "conv2_block1_0_conv") in links, "where the shortcut leaves the main path"
    assert ("conv2_block1_out", "conv2_block2_add") in links, "the identity shortcut"
    merge = plan.units[by_output["conv2_block2_add"]]
    assert len(merge.inputs) == 2


def test_an_unnamed_inception_module_becomes_one_block_named_after_its_output():
    layers = network(
        ("input", "InputLayer", ()),
        ("conv2d", "Conv2D", ("input",)),
        ("conv2d_1", "Conv2D", ("conv2d",)),
        ("conv2d_2", "Conv2D", ("conv2d",)),
        ("conv2d_3", "Conv2D", ("conv2d_2",)),
        ("average_pooling2d", "AveragePooling2D", ("conv2d",)),
        ("mixed0", "Concatenate", ("conv2d_1", "conv2d_3", "average_pooling2d")),
        ("dense", "Dense", ("mixed0",)),
    )
    plan = plan_graph(layers)
    assert [block.name for block in plan.blocks] == ["mixed0"]
    block = plan.blocks[0]
    lanes = sorted(plan.units[index].lane for index in block.units if plan.units[index].output != "mixed0")
    assert lanes == [0, 0, 1, 2], "three towers side by side, the longest on the main path"


def test_a_short_sequential_network_keeps_a_unit_per_layer_and_no_links():
    layers = network(
        ("input", "InputLayer", ()),
        ("conv", "Conv2D", ("input",)),
        ("drop", "Dropout", ("conv",)),
        ("flat", "Flatten", ("drop",)),
        ("dense", "Dense", ("flat",)),
    )
    assert is_chain(layers)
    plan = plan_graph(layers)
    assert plan.detailed and [unit.layers for unit in plan.units] == [[layer.name] for layer in layers]
    assert plan.blocks == [] and plan.links == []
    table = layer_table(layers, plan)
    assert table["item"].tolist() == [0, 1, 2, 3, 4], "one column per layer, as sequential scenes always stood"
    assert row_length(plan, 40.0, 40.0) == 5, "a chain does not wrap"


def test_keras_block_names():
    assert block_key("conv4_block12_2_conv") == "conv4_block12"
    assert block_key("block_13_expand_relu") == "block_13"
    assert block_key("block6a_se_excite") == "block6a"
    assert block_key("mixed7") == "mixed7"
    assert block_key("expanded_conv_project") == "expanded_conv"
    assert block_key("predictions") is None
    assert block_key("encoder/stage1/conv") == "encoder/stage1", "a nested model's layers are its block"


def test_layer_table_marks_what_a_collapsed_block_hides():
    layers = residual_network()
    plan = plan_graph(layers)
    table = layer_table(layers, plan)
    index = {layer.name: layer.index for layer in layers}
    assert table["is_output"][index["conv2_block1_out"]] == 1.0
    assert table["is_output"][index["conv2_block1_2_conv"]] == 0.0
    assert table["is_output"][index["stem_relu"]] == 1.0
    assert table["lane"][index["conv2_block1_0_conv"]] == 1.0
    assert table["item"][index["conv2_block1_1_bn"]] == table["item"][index["conv2_block1_out"]] == 2


def test_long_rows_wrap_towards_a_16_by_9_outline():
    layers = [Layer(0, "input", "InputLayer", ())]
    for index in range(1, 60):
        layers.append(Layer(index, f"add_{index}", "Add", (layers[-1].name, layers[-1].name)))
    plan = plan_graph(layers)
    length = row_length(plan, layer_spacing=100.0, row_spacing=100.0)
    rows = -(-len(plan.items) // length)
    width, height = length * 100.0 * 0.7071, rows * 100.0
    assert 1 < rows < len(plan.items)
    assert 1.1 < width / height < 2.9


def test_the_budget_caps_wide_layers_first_and_says_which():
    layers = [
        Layer(0, "input", "InputLayer", (), (32, 32, 3)),
        Layer(1, "wide", "Conv2D", ("input",), (32, 32, 512)),
        Layer(2, "narrow", "Conv2D", ("wide",), (32, 32, 16)),
    ]
    names = {"input", "wide", "narrow"}
    whole = budget.plan_channels(layers, names, 1e12)
    assert whole.shown == {"input": 3, "wide": 512, "narrow": 16} and whole.capped == ()
    limit = whole.estimated_bytes // 4
    capped = budget.plan_channels(layers, names, limit)
    assert capped.estimated_bytes <= limit
    assert capped.capped == ("wide",) and 16 <= capped.shown["wide"] < 512
    assert capped.shown["narrow"] == 16 and capped.shown["input"] == 3


@pytest.mark.parametrize("epochs, samples", [(1, 1), (10, 4)])
def test_the_estimate_grows_with_stored_epochs_and_samples(epochs, samples):
    assert budget.estimated_bytes(1000, epochs, samples) == 1000 * (
        budget.BYTES_PER_CELL + budget.BYTES_PER_STORED_VALUE * epochs * samples
    )


def test_arithmetic_from_a_models_code_folds_like_an_activation():
    """MobileNetV3's hard-swish: conv, then x + 3, ReLU6, / 6 and a multiply with the conv's output."""
    layers = network(
        ("input", "InputLayer", ()),
        ("conv", "Conv2D", ("input",)),
        ("plus_three", "ops.Add", ("conv",)),
        ("relu6", "ReLU", ("plus_three",)),
        ("sixth", "ops.Multiply", ("relu6",)),
        ("swish", "Multiply", ("conv", "sixth")),
        ("pool", "GlobalAveragePooling2D", ("swish",)),
        ("dense", "Dense", ("pool",)),
    )
    plan = plan_graph(layers, detailed=False)
    assert ["plus_three", "relu6", "sixth"] in [unit.layers for unit in plan.units], (
        "the gate's arithmetic is one unit; conv feeds two layers, so nothing folds into it"
    )


class _OutputOnly:
    """Just what choosing the labeled output neurons reads from a bundle."""

    def __init__(self, probabilities):
        self.class_names = [f"class {index}" for index in range(len(probabilities))]
        self.layers = [Layer(0, "output", "Dense", (), (len(probabilities),))]
        self._probabilities = np.asarray(probabilities, dtype=np.float32)

    @property
    def outputs(self):
        return (OutputInfo("output", tuple(self.class_names), "samples/predictions", "samples/labels"),)

    def activations(self, name, epoch, sample):
        return self._probabilities


def test_every_class_is_named_up_to_twenty_and_only_the_most_probable_of_a_thousand():
    from blender_cnn.core.scene_plan import TOP_CLASSES_LABELED, labeled_output_units

    assert labeled_output_units(_OutputOnly(np.full(10, 0.1))) == list(range(10))
    probabilities = np.random.default_rng(0).random(1000)
    chosen = labeled_output_units(_OutputOnly(probabilities))
    assert chosen == sorted(np.argsort(probabilities)[-TOP_CLASSES_LABELED:].tolist())
