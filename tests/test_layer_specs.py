"""The layer registry: every consumer reads its answers from the one entry of a type.

No TensorFlow here: the registry's agreement with Keras' class names is checked
in test_forward.py, its shape rules against Keras in test_design.py.
"""

import numpy as np
import pytest

from blender_cnn.core import design_rules, graph, inspection, operations
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.core.forward import compute_layer
from blender_cnn.core.layer_specs import (
    DESIGNER_CATEGORIES,
    LAYER_SPECS,
    MANY_INPUTS,
    OPERATION_TYPE_PREFIX,
    computable_layer_types,
    designable_layer_types,
    folds_into_source,
    is_known_layer_type,
    spec_of,
)
from blender_cnn.core.shape_rules import LayerProblem


def test_every_designable_type_is_complete():
    # A type the designer offers must also compute, show in a menu and be inspectable.
    for name in designable_layer_types():
        spec = LAYER_SPECS[name]
        assert spec.forward is not None, name
        assert spec.category in DESIGNER_CATEGORIES, name
        assert spec.inspection is not None, name
        assert len(set(spec.argument_names)) == len(spec.arguments), name


def test_every_registered_kind_has_a_consumer():
    # An inspection kind nobody handles would make inspect_cell fail on a registered type.
    kinds = {spec.inspection for spec in LAYER_SPECS.values()} - {None, "value"}
    assert kinds <= set(inspection.INSPECTORS)


def test_aliases_resolve_to_their_type():
    assert spec_of("MaxPool2D") is LAYER_SPECS["MaxPooling2D"]
    assert spec_of("Convolution2D").type == "Conv2D"
    assert spec_of("NoSuchLayer") is None
    assert is_known_layer_type("GlobalAvgPool2D")
    assert not is_known_layer_type("LayerNormalization")  # computed, but shown as outputs only


def test_forward_computes_through_the_registry_entry():
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    pooled = compute_layer("MaxPooling2D", {"pool_size": [2, 2]}, {}, [x])
    assert pooled.shape == (2, 2, 2, 1)
    assert pooled[0, :, :, 0].tolist() == [[5, 7], [13, 15]]
    # An alias computes as its type does.
    assert np.array_equal(compute_layer("MaxPool2D", {"pool_size": [2, 2]}, {}, [x]), pooled)
    with pytest.raises(BlenderCNNError, match="cannot compute; it computes .*Conv2D"):
        compute_layer("GroupNormalization", {}, {}, [x])
    assert "GroupNormalization" not in computable_layer_types()


def test_design_rules_take_arguments_and_inputs_from_the_entry():
    class Info:
        type = "Dense"
        name = "dense"

    class Source:
        name = "maps"
        output_shape = (4, 4, 3)

    with pytest.raises(LayerProblem, match="it takes units, activation, use_bias"):
        design_rules.check_type_and_arguments(Info, {"type": "Dense", "filters": 3})
    with pytest.raises(LayerProblem, match="needs a flat input; add Flatten after maps"):
        design_rules.infer_layer(Info, {"type": "Dense", "units": 3}, [Source])
    Info.type = "Add"
    with pytest.raises(LayerProblem, match="merges two or more inputs, it has 1"):
        design_rules.infer_layer(Info, {"type": "Add"}, [Source])


def test_graph_and_operations_read_the_entry():
    assert folds_into_source("BatchNormalization") and folds_into_source("ops.Multiply")
    assert folds_into_source(OPERATION_TYPE_PREFIX + "Unregistered")
    assert not folds_into_source("Conv2D") and not folds_into_source("Flatten")
    assert graph.PADDING_TYPES == {"ZeroPadding2D"}
    assert "SeparableConv2D" in graph.WINDOWED_TYPES and "Conv2DTranspose" not in graph.WINDOWED_TYPES
    assert operations.KERNEL_GRID_TYPES == {"Conv2D", "DepthwiseConv2D"}
    merges = {name for name, spec in LAYER_SPECS.items() if spec.takes == MANY_INPUTS}
    assert {"Add", "Concatenate", "Multiply"} <= merges


def test_window_geometry_knows_pooling_by_its_operation():
    # A pooling window has no dilation and reads one channel per output channel.
    window = operations.window_geometry(
        "AveragePooling2D", {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}, (8, 8, 4), (4, 4, 4)
    )
    assert (window["kernel_rows"], window["stride_rows"], window["dilation_rows"]) == (3, 2, 1)
    assert (window["group_inputs"], window["group_outputs"]) == (1, 1)
