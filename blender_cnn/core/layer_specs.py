"""The layer registry: one ``LayerSpec`` per layer type, the one place that says what the add-on knows of it.

Plain Python and numpy, no bpy. Every other module asks this registry
instead of keeping its own table of type names:

- ``core.forward`` computes a layer with its ``forward`` function
  (``core.numpy_layers``);
- ``core.design_rules`` checks a designed layer's ``arguments`` and inputs
  (``takes``) and infers its shape with its ``shape_rule``
  (``core.shape_rules``); types without one cannot be designed;
- ``designer.tree`` makes one node class per designable type, with the
  ``arguments`` as node properties, in the menu ``category``;
- ``core.operations`` shows its ``operation`` (which input cells make a cell);
- ``core.inspection`` takes a cell apart by its ``inspection`` kind;
- ``core.graph`` folds it into a neighbour's unit by its ``folds``;
- importers read ``keras_names`` and ``onnx_ops`` to name what a file calls it.

Adding a layer type is one entry here, its numpy function and shape rule,
and their tests (see CONTRIBUTING.md).

A layer of an unknown type is still recorded in a bundle with its output
activations (shown as "outputs only"). Functional models also record
keras.ops operations (``x + 3.0`` in a model's code is ``keras.ops.add``),
which are not layers: the extractor names their type
``OPERATION_TYPE_PREFIX`` + the operation's class (``"ops.Add"``), so they
never pass for the layer of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import numpy_layers as compute
from . import shape_rules as shapes

OPERATION_TYPE_PREFIX = "ops."
# The layers of a nested model are named "<model>/<layer>" in a bundle.
NESTED_MODEL_SEPARATOR = "/"

# What a layer takes (``LayerSpec.takes``).
ONE_INPUT = "one"
FLAT_INPUT = "flat"  # a 1-D tensor: Keras would apply it to the last axis of a map, which the designer refuses
IMAGE_INPUT = "image"  # a (height, width, channels) map
MANY_INPUTS = "many"  # two or more (merges)

# How a layer joins a neighbour's unit in a graph's overview (``LayerSpec.folds``).
FOLDS_INTO_SOURCE = "source"  # it finishes the layer before it (normalization, activation, dropout)
FOLDS_INTO_READER = "reader"  # padding belongs to the windowed layer that reads it

# Operation kinds (``LayerSpec.operation``); core.operations stores them as integers.
CONVOLUTION = "convolution"
TRANSPOSED_CONVOLUTION = "transposed_convolution"
MAX_POOLING = "max_pooling"
AVERAGE_POOLING = "average_pooling"
GLOBAL_POOLING = "global_pooling"
FLATTEN = "flatten"
DENSE = "dense"
ELEMENTWISE = "elementwise"
CONCATENATE = "concatenate"
WINDOWED_OPERATIONS = (CONVOLUTION, MAX_POOLING, AVERAGE_POOLING)

# Inspection kinds (``LayerSpec.inspection``): how core.inspection takes a cell apart.
INSPECT_VALUE = "value"  # plumbing: the value only
INSPECT_CONVOLUTION = "convolution"
INSPECT_SEPARABLE = "separable"
INSPECT_TRANSPOSED = "transposed"
INSPECT_POOLING = "pooling"
INSPECT_GLOBAL_POOLING = "global_pooling"
INSPECT_DENSE = "dense"
INSPECT_MERGE = "merge"
INSPECT_CONCATENATION = "concatenation"
INSPECT_BATCH_NORMALIZATION = "batch_normalization"
INSPECT_NORMALIZATION = "normalization"
INSPECT_RESCALING = "rescaling"
INSPECT_ACTIVATION = "activation"


@dataclass(frozen=True)
class Argument:
    """One Keras argument of a layer type in the design format, and how the designer shows it.

    ``kind``: int, pair (one or two positive integers), enum, bool, float,
    axis, or list (JSON-ish text: ``7, 7, 1``). ``default`` is Keras' default
    (the argument is left out of a design that keeps it); ``required``
    arguments are always written, ``initial`` is a new node's value;
    ``optional`` arguments (Keras default None) get a checkbox. ``shown``
    False: accepted in a design file but not a node property (``data_format``,
    whose one allowed value is channels_last).
    """

    name: str
    kind: str
    default: object = None
    required: bool = False
    optional: bool = False
    initial: object = None
    minimum: object = None
    maximum: object = None
    items: tuple[str, ...] = field(default=())
    shown: bool = True

    @property
    def prop(self) -> str:
        return f"arg_{self.name}"

    @property
    def use_prop(self) -> str:
        return f"use_{self.name}"

    @property
    def start(self) -> object:
        return self.initial if self.initial is not None else self.default


@dataclass(frozen=True)
class LayerSpec:
    """Everything the add-on knows of one layer type (named by its Keras class)."""

    type: str
    forward: compute.LayerFunction | None = None  # numpy_layers function(config, weights, inputs) -> output
    shape_rule: shapes.ShapeRule | None = None  # shape_rules function; None: the designer does not offer the type
    arguments: tuple[Argument, ...] = ()  # Arguments of the design format (with a shape rule)
    takes: str = ONE_INPUT
    category: str | None = None  # the designer's Add menu
    operation: str | None = None  # what core.operations shows; None: outputs only
    inspection: str | None = None  # how core.inspection takes a cell apart; None: it cannot
    folds: str | None = None  # how core.graph folds it into a neighbour's unit
    short_name: str | None = None  # in a unit's label, where the class name is long
    keras_names: tuple[str, ...] = ()  # other Keras class names (aliases) of the type
    onnx_ops: tuple[str, ...] = ()  # ONNX operator types an import turns into this layer

    @property
    def argument_names(self) -> tuple[str, ...]:
        return tuple(argument.name for argument in self.arguments)

    @property
    def label(self) -> str:
        return self.short_name or self.type


# ---------------------------------------------------------------- the design format's arguments

ACTIVATION_NAMES = tuple(sorted(compute.ACTIVATIONS))
_CHANNELS_LAST = Argument("data_format", "enum", "channels_last", items=("channels_last",), shown=False)
_PADDING = Argument("padding", "enum", "valid", items=shapes.PADDINGS)
_ACTIVATION = Argument("activation", "enum", "linear", items=ACTIVATION_NAMES)
_USE_BIAS = Argument("use_bias", "bool", True)
# fmt: off
_KERNEL = (Argument("kernel_size", "pair", None, required=True, initial=3), Argument("strides", "pair", 1),
           _PADDING, _CHANNELS_LAST, Argument("dilation_rate", "pair", 1), _ACTIVATION, _USE_BIAS)
_FILTERS = Argument("filters", "int", None, required=True, initial=16, minimum=1)
_MULTIPLIER = Argument("depth_multiplier", "int", 1, minimum=1)
_POOL = (Argument("pool_size", "pair", 2), Argument("strides", "pair", None, optional=True, initial=2), _PADDING,
         _CHANNELS_LAST)
_GLOBAL_POOL = (_CHANNELS_LAST, Argument("keepdims", "bool", False))
_AXIS = Argument("axis", "axis", -1, minimum=-4, maximum=3)

# ---------------------------------------------------------------- the registry

_IDENTITY_TYPES = ("Identity", "SpatialDropout1D", "SpatialDropout3D", "AlphaDropout", "GaussianDropout",
                   "GaussianNoise", "ActivityRegularization", "StochasticDepth")
# Dropout and noise fold into the unit before them; 1-D and 3-D spatial dropout never sat in a CNN's unit.
_FOLDING_IDENTITY_TYPES = ("Identity", "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization",
                           "StochasticDepth")

_SPECS = (
    LayerSpec("InputLayer", forward=compute.identity, inspection=INSPECT_VALUE),
    # ---- convolution
    LayerSpec("Conv2D", compute.conv2d_layer, shapes.conv2d,
              (_FILTERS, *_KERNEL, Argument("groups", "int", 1, minimum=1)),
              takes=IMAGE_INPUT, category="Convolution", operation=CONVOLUTION, inspection=INSPECT_CONVOLUTION,
              keras_names=("Convolution2D",), onnx_ops=("Conv",)),
    LayerSpec("DepthwiseConv2D", compute.depthwise_conv2d_layer, shapes.depthwise_conv2d, (*_KERNEL, _MULTIPLIER),
              takes=IMAGE_INPUT, category="Convolution", operation=CONVOLUTION, inspection=INSPECT_CONVOLUTION,
              short_name="DepthwiseConv", onnx_ops=("Conv",)),
    LayerSpec("SeparableConv2D", compute.separable_conv2d_layer, shapes.separable_conv2d,
              (_FILTERS, *_KERNEL, _MULTIPLIER),
              takes=IMAGE_INPUT, category="Convolution", operation=CONVOLUTION, inspection=INSPECT_SEPARABLE,
              short_name="SeparableConv", keras_names=("SeparableConvolution2D",)),
    LayerSpec("Conv2DTranspose", compute.conv2d_transpose_layer, shapes.conv2d_transpose,
              (_FILTERS, *_KERNEL, Argument("output_padding", "pair", None, optional=True, initial=0, minimum=0)),
              takes=IMAGE_INPUT, category="Convolution", operation=TRANSPOSED_CONVOLUTION,
              inspection=INSPECT_TRANSPOSED, keras_names=("Convolution2DTranspose",), onnx_ops=("ConvTranspose",)),
    LayerSpec("ZeroPadding2D", compute.zero_padding, shapes.zero_padding,
              (Argument("padding", "list", 1), _CHANNELS_LAST),
              takes=IMAGE_INPUT, category="Convolution", inspection=INSPECT_VALUE, folds=FOLDS_INTO_READER,
              short_name="Pad", onnx_ops=("Pad",)),
    # ---- pooling
    LayerSpec("MaxPooling2D", compute.max_pooling, shapes.pooling, _POOL,
              takes=IMAGE_INPUT, category="Pooling", operation=MAX_POOLING, inspection=INSPECT_POOLING,
              keras_names=("MaxPool2D",), onnx_ops=("MaxPool",)),
    LayerSpec("AveragePooling2D", compute.average_pooling, shapes.pooling, _POOL,
              takes=IMAGE_INPUT, category="Pooling", operation=AVERAGE_POOLING, inspection=INSPECT_POOLING,
              keras_names=("AvgPool2D",), onnx_ops=("AveragePool",)),
    LayerSpec("GlobalAveragePooling2D", compute.global_average_pooling, shapes.global_pooling, _GLOBAL_POOL,
              takes=IMAGE_INPUT, category="Pooling", operation=GLOBAL_POOLING, inspection=INSPECT_GLOBAL_POOLING,
              short_name="GlobalAvgPool", keras_names=("GlobalAvgPool2D",), onnx_ops=("GlobalAveragePool",)),
    LayerSpec("GlobalMaxPooling2D", compute.global_max_pooling, shapes.global_pooling, _GLOBAL_POOL,
              takes=IMAGE_INPUT, category="Pooling", operation=GLOBAL_POOLING, inspection=INSPECT_GLOBAL_POOLING,
              keras_names=("GlobalMaxPool2D",), onnx_ops=("GlobalMaxPool",)),
    # ---- activation
    LayerSpec("Activation", compute.activation_layer, shapes.activation_layer,
              (Argument("activation", "enum", None, required=True, initial="relu", items=ACTIVATION_NAMES),),
              category="Activation", inspection=INSPECT_ACTIVATION, folds=FOLDS_INTO_SOURCE,
              onnx_ops=("Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Softplus", "Softsign",
                        "Gelu", "Mish")),
    LayerSpec("ReLU", compute.relu_layer, shapes.relu,
              (Argument("max_value", "float", None, optional=True, initial=6.0, minimum=0.0),
               Argument("negative_slope", "float", 0.0, minimum=0.0), Argument("threshold", "float", 0.0, minimum=0.0)),
              category="Activation", inspection=INSPECT_ACTIVATION, folds=FOLDS_INTO_SOURCE,
              onnx_ops=("Relu", "Clip")),
    LayerSpec("LeakyReLU", compute.leaky_relu_layer, shapes.leaky_relu,
              (Argument("negative_slope", "float", 0.3, minimum=0.0),),
              category="Activation", inspection=INSPECT_ACTIVATION, folds=FOLDS_INTO_SOURCE, onnx_ops=("LeakyRelu",)),
    LayerSpec("Softmax", compute.softmax_layer, shapes.softmax, (_AXIS,),
              category="Activation", inspection=INSPECT_ACTIVATION, folds=FOLDS_INTO_SOURCE, onnx_ops=("Softmax",)),
    LayerSpec("ELU", compute.elu_layer, inspection=INSPECT_ACTIVATION, folds=FOLDS_INTO_SOURCE),
    LayerSpec("PReLU", compute.prelu_layer, inspection=INSPECT_ACTIVATION, folds=FOLDS_INTO_SOURCE,
              onnx_ops=("PRelu",)),
    LayerSpec("ThresholdedReLU", folds=FOLDS_INTO_SOURCE),  # tf.keras 2.x only
    # ---- core
    LayerSpec("Dense", compute.dense, shapes.dense,
              (Argument("units", "int", None, required=True, initial=10, minimum=1), _ACTIVATION, _USE_BIAS),
              takes=FLAT_INPUT, category="Core", operation=DENSE, inspection=INSPECT_DENSE,
              onnx_ops=("Gemm", "MatMul")),
    LayerSpec("Flatten", compute.flatten, shapes.flatten, (_CHANNELS_LAST,),
              category="Core", operation=FLATTEN, inspection=INSPECT_VALUE, onnx_ops=("Flatten",)),
    LayerSpec("Reshape", compute.reshape, shapes.reshape,
              (Argument("target_shape", "list", None, required=True, initial=[-1]),),
              category="Core", inspection=INSPECT_VALUE, folds=FOLDS_INTO_SOURCE, onnx_ops=("Reshape",)),
    LayerSpec("Dropout", compute.identity, shapes.dropout,
              (Argument("rate", "float", None, required=True, initial=0.5, minimum=0.0, maximum=1.0),),
              category="Core", inspection=INSPECT_VALUE, folds=FOLDS_INTO_SOURCE, onnx_ops=("Dropout",)),
    LayerSpec("BatchNormalization", compute.batch_normalization, shapes.batch_normalization,
              (_AXIS, Argument("epsilon", "float", 1e-3, minimum=0.0), Argument("center", "bool", True),
               Argument("scale", "bool", True)),
              category="Core", inspection=INSPECT_BATCH_NORMALIZATION, folds=FOLDS_INTO_SOURCE, short_name="BN",
              onnx_ops=("BatchNormalization",)),
    LayerSpec("Rescaling", compute.rescaling, shapes.rescaling,
              (Argument("scale", "float", None, required=True, initial=1 / 255), Argument("offset", "float", 0.0)),
              category="Core", inspection=INSPECT_RESCALING, folds=FOLDS_INTO_SOURCE),
    LayerSpec("LayerNormalization", compute.layer_normalization, folds=FOLDS_INTO_SOURCE,
              onnx_ops=("LayerNormalization",)),
    LayerSpec("RMSNormalization", compute.rms_normalization),
    LayerSpec("GroupNormalization", folds=FOLDS_INTO_SOURCE),
    LayerSpec("UnitNormalization", folds=FOLDS_INTO_SOURCE),
    LayerSpec("Normalization", compute.normalization, inspection=INSPECT_NORMALIZATION, folds=FOLDS_INTO_SOURCE),
    LayerSpec("SpatialDropout2D", compute.identity, inspection=INSPECT_VALUE, folds=FOLDS_INTO_SOURCE),
    *(LayerSpec(name, compute.identity, inspection=INSPECT_VALUE,
                folds=FOLDS_INTO_SOURCE if name in _FOLDING_IDENTITY_TYPES else None,
                onnx_ops=("Identity",) if name == "Identity" else ())
      for name in _IDENTITY_TYPES),
    LayerSpec("Permute", compute.permute, inspection=INSPECT_VALUE, onnx_ops=("Transpose",)),
    LayerSpec("Cropping2D", compute.cropping, inspection=INSPECT_VALUE),
    LayerSpec("UpSampling2D", compute.up_sampling, inspection=INSPECT_VALUE, onnx_ops=("Upsample", "Resize")),
    # keras.applications' own layers: ConvNeXt's per-channel scale, InceptionResNetV2's scaled residual.
    LayerSpec("LayerScale", compute.layer_scale, folds=FOLDS_INTO_SOURCE),
    LayerSpec("CustomScaleLayer", compute.custom_scale),
    # ---- merge
    LayerSpec("Add", compute.MERGES["Add"], shapes.add, (), takes=MANY_INPUTS, category="Merge",
              operation=ELEMENTWISE, inspection=INSPECT_MERGE, onnx_ops=("Add", "Sum")),
    LayerSpec("Concatenate", compute.concatenate, shapes.concatenate, (_AXIS,), takes=MANY_INPUTS, category="Merge",
              operation=CONCATENATE, inspection=INSPECT_CONCATENATION, onnx_ops=("Concat",)),
    *(LayerSpec(name, compute.MERGES[name], takes=MANY_INPUTS, operation=ELEMENTWISE, inspection=INSPECT_MERGE,
                onnx_ops=onnx_ops)
      for name, onnx_ops in (("Subtract", ("Sub",)), ("Multiply", ("Mul",)), ("Average", ("Mean",)),
                             ("Maximum", ("Max",)), ("Minimum", ("Min",)))),
    # ---- keras.ops arithmetic recorded by functional models (x + 3, x * y, -x): part of the unit before
    *(LayerSpec(OPERATION_TYPE_PREFIX + name, function, folds=FOLDS_INTO_SOURCE)
      for name, function in compute.OPERATIONS.items()),
)
# fmt: on

LAYER_SPECS = {spec.type: spec for spec in _SPECS}
assert len(LAYER_SPECS) == len(_SPECS), "a layer type is registered twice"
_BY_KERAS_NAME = {**{alias: spec for spec in _SPECS for alias in spec.keras_names}, **LAYER_SPECS}

# The designer's Add menu, in this order.
DESIGNER_CATEGORIES = ("Convolution", "Pooling", "Activation", "Core", "Merge")


def spec_of(type_name: str) -> LayerSpec | None:
    """The ``LayerSpec`` of the Keras class ``type_name`` (an alias too), or None for a type the add-on does not know."""
    return _BY_KERAS_NAME.get(type_name)


def designable_layer_types() -> tuple[str, ...]:
    """The types a design (and the designer) can use, sorted by name."""
    return tuple(sorted(spec.type for spec in _SPECS if spec.shape_rule is not None))


def computable_layer_types() -> tuple[str, ...]:
    """The types the numpy forward pass computes, sorted by name."""
    return tuple(sorted(spec.type for spec in _SPECS if spec.forward is not None))


def is_known_layer_type(type_name: str) -> bool:
    """True when the add-on shows and computes layers of ``type_name`` fully (not "outputs only").

    Those are the types a design can use, and the input layer.
    """
    spec = spec_of(type_name)
    return spec is not None and (spec.shape_rule is not None or spec.type == "InputLayer")


def types_where(**fields: object) -> frozenset[str]:
    """The registered types whose spec has every given field value, e.g. ``types_where(operation=DENSE)``."""
    return frozenset(
        spec.type for spec in _SPECS if all(getattr(spec, name) == value for name, value in fields.items())
    )


def folds_into_source(type_name: str) -> bool:
    """True for layers that finish the layer before them (and every keras.ops operation)."""
    spec = spec_of(type_name)
    return type_name.startswith(OPERATION_TYPE_PREFIX) or (spec is not None and spec.folds == FOLDS_INTO_SOURCE)
