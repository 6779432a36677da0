"""ONNX nodes -> the bundle's layers: Keras layer types, channels-last weights, one layer per module.

``translate`` walks the graph's data nodes in order (``onnx_graph``) and
turns each into the layer a Keras user would have written: Conv into
Conv2D or DepthwiseConv2D, Gemm into Dense, Clip(0, 6) into ReLU(6), and so
on, with configs as Keras writes them and weights transposed to Keras'
layouts. PyTorch spreads some layers over several nodes; these are
recognised and made one layer again: MatMul + Add (a Linear), Sigmoid + Mul
(SiLU), HardSigmoid + Mul (hard swish), a Flatten written as Shape, Gather,
Concat and Reshape. Explicit padding Keras has no word for becomes a
ZeroPadding2D layer before the convolution or pooling (``<name>.pad``), as
Keras' own ResNet50 has.

A node this module does not translate, or one whose translation the
numpy forward pass does not reproduce (``onnx_bundle`` checks every layer on
the first batch), is kept as an outputs-only layer ``onnx.<OpType>``: its
activations are shown, its computation is not, as for unknown Keras layers.
Identity, and a Transpose that only moves channels between ONNX's layout
and the bundle's, are no layers at all.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import BlenderCNNError
from .onnx_graph import (
    CHANNELS_FIRST,
    FLAT_CHW,
    PLAIN,
    Layout,
    NamedUnit,
    assign_names,
    attributes,
    clean_name,
    graph_inputs,
    input_layout,
    json_attributes,
    module_path,
    user_float,
    weight_module,
)

ONNX_TYPE_PREFIX = "onnx."  # outputs-only layers: "onnx.<OpType>"
# Constants up to this many values are written into an operation's config (x * per-channel scale).
MAX_CONFIG_CONSTANT = 4096
ACTIVATIONS = {  # ONNX op -> Keras activation name, for ops whose ONNX defaults are Keras' function
    "Tanh": "tanh",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "HardSwish": "hard_silu",
    "Mish": "mish",
    "Exp": "exponential",
    "LogSoftmax": "log_softmax",
}
MERGES = {"Add": "Add", "Sum": "Add", "Sub": "Subtract", "Mul": "Multiply", "Max": "Maximum", "Min": "Minimum",
          "Mean": "Average"}  # fmt: skip
OPERATIONS_WITH_CONSTANT = {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Div": "Divide"}
SELU_DEFAULTS = (1.67326, 1.0507)


@dataclass
class Layer:
    """One bundle layer made from one or more ONNX nodes."""

    unit: NamedUnit  # its name, once ``assign_names`` ran
    type: str
    inputs: list  # Layer objects it takes input from, in order
    config: dict
    weights: list  # [(weight name, float32 array in Keras layout)]
    output_shape: tuple  # per sample, bundle layout
    layout: Layout  # how onnxruntime's value of ``tensor`` becomes the bundle's
    tensor: str | None  # the ONNX tensor holding its output; None: computed with numpy (a padding layer)
    nodes: tuple = ()  # names of the ONNX nodes it stands for
    ops: tuple = ()  # their op types
    params: int | None = None
    owner: "Layer | None" = field(default=None, repr=False)  # a padding layer's convolution or pooling

    @property
    def name(self):
        return self.unit.name

    @property
    def is_outputs_only(self):
        return self.type.startswith(ONNX_TYPE_PREFIX)

    def describe(self):
        """The manifest entry (docs/bundle-format.md, "Layer objects")."""
        return {
            "name": self.name,
            "type": self.type,
            "inputs": [layer.name for layer in self.inputs],
            "output_shape": [int(size) for size in self.output_shape],
            "config": self.config,
            "params": int(self.params if self.params is not None else sum(w.size for _, w in self.weights)),
            "weights": [
                {"name": name, "array": f"weights/{self.name}/{name}", "shape": [int(n) for n in values.shape]}
                for name, values in self.weights
            ],
            "activations": f"activations/{self.name}",
        }


class Translation:
    """The layers of one ONNX model, given the per-sample shapes of its float data tensors (onnxruntime's)."""

    def __init__(self, model, shapes, constants, where):
        self.model = model
        self.shapes = shapes  # {tensor: per-sample ONNX shape}, float data tensors only
        self.constants = constants  # {tensor: array} of initializers and Constant nodes
        self.where = where
        self.layers = []
        self.layer_of = {}  # tensor -> the Layer whose output it is
        self.layout_of = {}  # tensor -> Layout
        self.consumers = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {value.name for value in model.graph.output}

    # ---------------------------------------------------------------- building blocks

    def constant(self, name):
        return self.constants.get(name) if name else None

    def is_data(self, name):
        return bool(name) and name in self.layer_of

    def onnx_shape(self, tensor):
        return tuple(self.shapes[tensor])

    def add(self, node, layer_type, inputs, config, weights=(), tensor=None, layout=None, op=None, nodes=None):
        tensor = tensor if tensor is not None else node.output[0]
        layout = layout or self.layout_for_output(inputs, tensor)
        unit = NamedUnit(
            self.path_of(node, weights),
            op or node.op_type,
            fallback=_own_name(node),
            scoped=node.name.startswith("/"),
            first_scope=node.name.split("/", 1)[0],
        )
        layer = Layer(
            unit,
            layer_type,
            [self.layer_of[name] for name in inputs],
            config,
            [(name, np.asarray(values, dtype=np.float32)) for name, values in weights],
            layout.bundle_shape(self.onnx_shape(tensor)),
            layout,
            tensor,
            tuple(n.name for n in (nodes or [node])),
            tuple(n.op_type for n in (nodes or [node])),
        )
        self.layers.append(layer)
        self.layer_of[tensor] = layer
        self.layout_of[tensor] = layout
        return layer

    def path_of(self, node, weights):
        path = module_path(node)
        if path is None:
            for name in node.input[1:]:
                if name in self.constants and weight_module(name):
                    return weight_module(name)
        return path

    def layout_for_output(self, inputs, tensor):
        """Channels first if a channels-first input has the output's rank, else the input's flat order when the
        shape is unchanged, else plain."""
        shape = self.onnx_shape(tensor)
        for name in inputs:
            layout = self.layout_of[name]
            if layout.kind == CHANNELS_FIRST and len(self.onnx_shape(name)) == len(shape):
                return layout
            if layout.kind == FLAT_CHW and self.onnx_shape(name) == shape:
                return layout
        return Layout(PLAIN)

    def alias(self, tensor, source, layout=None):
        """``tensor`` is ``source``'s layer's output in the bundle (an Identity, a layout-only Transpose)."""
        self.layer_of[tensor] = self.layer_of[source]
        self.layout_of[tensor] = layout or self.layout_of[source]

    def padding_layer(self, node, source, pads):
        """A ZeroPadding2D before ``node``'s layer, for explicit ``pads`` (top, left, bottom, right)."""
        top, left, bottom, right = pads
        channels, height, width = self.onnx_shape(source)
        layer = Layer(
            NamedUnit(None, "pad"),
            "ZeroPadding2D",
            [self.layer_of[source]],
            {"padding": [[top, bottom], [left, right]], "data_format": "channels_last"},
            [],
            (height + top + bottom, width + left + right, channels),
            Layout(CHANNELS_FIRST),
            None,
            (node.name,),
            ("Pad",),
        )
        self.layers.append(layer)
        return layer

    def outputs_only(self, node):
        """Keep ``node`` as a layer whose activations are shown and whose computation is not."""
        data_inputs = [name for name in node.input if self.is_data(name)]
        weights = [
            (_weight_name(name, position), values)
            for position, name in enumerate(node.input)
            if name and not self.is_data(name) and (values := self.constant(name)) is not None and values.ndim
        ]
        made = None
        for position, tensor in enumerate(node.output):
            if tensor not in self.shapes:
                continue
            made = self.add(
                node,
                ONNX_TYPE_PREFIX + node.op_type,
                data_inputs,
                json_attributes(node),
                weights if position == 0 else (),
                tensor=tensor,
            )
        return made

    # ---------------------------------------------------------------- the walk

    def run(self):
        for value in graph_inputs(self.model):
            if value.name not in self.shapes:
                raise BlenderCNNError(self.where, f"input {value.name!r} is not a float tensor; it takes images")
            layout = input_layout(self.onnx_shape(value.name))
            unit = NamedUnit(None, "input", fixed=clean_name(value.name))
            layer = Layer(
                unit, "InputLayer", [], {}, [], layout.bundle_shape(self.onnx_shape(value.name)), layout, value.name
            )
            self.layers.append(layer)
            self.layer_of[value.name] = layer
            self.layout_of[value.name] = layout
        fused = set()
        for node in self.model.graph.node:
            if id(node) in fused or not any(self.is_data(name) for name in node.input):
                continue
            if not any(output in self.shapes for output in node.output):
                continue  # integer results (indices, shapes): no activations to show
            translate_node = TRANSLATORS.get(node.op_type)
            try:
                done = translate_node(self, node, fused) if translate_node else None
            except (KeyError, ValueError, IndexError, TypeError):  # a node unlike any exporter's we know
                done = None
            if done is None:
                self.outputs_only(node)
        self._name_layers()
        return self.layers

    def _name_layers(self):
        assign_names([layer.unit for layer in self.layers if layer.tensor is not None])
        for layer in self.layers:
            if layer.tensor is None:
                layer.unit.name = f"{layer.owner.name}.pad"

    def single_consumer(self, tensor, op_type):
        consumers = self.consumers.get(tensor, [])
        if len(consumers) == 1 and consumers[0].op_type == op_type and tensor not in self.outputs:
            return consumers[0]
        return None

    def spatial_padding(self, node, source, kernel, strides, dilations):
        """``(keras padding, pads or None)``: 'valid' or 'same' when Keras places the node's pads so, else
        'valid' after a padding layer of ``pads``."""
        attrs = attributes(node)
        _, height, width = self.onnx_shape(source)
        same = [_same_pads(size, k, s, d) for size, k, s, d in zip((height, width), kernel, strides, dilations)]
        auto_pad = attrs.get("auto_pad", "NOTSET")
        if auto_pad == "VALID":
            return "valid", None
        if auto_pad == "SAME_UPPER":
            return "same", None
        if auto_pad == "SAME_LOWER":
            pads = [same[0][1], same[1][1], same[0][0], same[1][0]]
        else:
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if not any(pads):
            return "valid", None
        if [same[0][0], same[1][0], same[0][1], same[1][1]] == pads:
            return "same", None
        return "valid", pads


def _same_pads(size, kernel, stride, dilation):
    """(before, after) TensorFlow's 'same' pads: the output is ceil(size / stride), extra padding at the end."""
    extent = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def _own_name(node):
    """A node's name as a layer name when it is not PyTorch's scoped name (those are read by module_path)."""
    return None if not node.name or node.name.startswith("/") else node.name


def _weight_name(tensor, position):
    module = weight_module(tensor)
    return tensor[len(module) + 1 :] if module else f"input_{position}"


def _pair(values, default):
    values = list(values) if values else [default, default]
    return values if len(values) == 2 else None


# ---------------------------------------------------------------- translators: (translation, node, fused) -> layer


def _conv(t, node, _fused):
    source, kernel = node.input[0], t.constant(node.input[1])
    if kernel is None or kernel.ndim != 4 or t.layout_of[source].kind != CHANNELS_FIRST:
        return None
    attrs = attributes(node)
    strides, dilations = _pair(attrs.get("strides"), 1), _pair(attrs.get("dilations"), 1)
    if strides is None or dilations is None:
        return None
    bias = t.constant(node.input[2]) if len(node.input) > 2 else None
    padding, pads = t.spatial_padding(node, source, kernel.shape[2:], strides, dilations)
    inputs = [source]
    channels, group, filters = t.onnx_shape(source)[0], int(attrs.get("group", 1)), kernel.shape[0]
    common = {
        "kernel_size": list(kernel.shape[2:]),
        "strides": strides,
        "padding": padding,
        "data_format": "channels_last",
        "dilation_rate": dilations,
    }
    if group > 1 and group == channels and filters % channels == 0:
        multiplier = filters // channels
        layer_type = "DepthwiseConv2D"
        config = {"depth_multiplier": multiplier, **common, "activation": "linear", "use_bias": bias is not None}
        keras_kernel = kernel.reshape(channels, multiplier, *kernel.shape[2:]).transpose(2, 3, 0, 1)
    else:
        layer_type = "Conv2D"
        config = {"filters": filters, **common, "groups": group, "activation": "linear", "use_bias": bias is not None}
        keras_kernel = kernel.transpose(2, 3, 1, 0)
    weights = [("kernel", keras_kernel)] + ([("bias", bias)] if bias is not None else [])
    return _with_padding(t, node, pads, source, layer_type, inputs, config, weights)


def _with_padding(t, node, pads, source, layer_type, inputs, config, weights):
    padding = t.padding_layer(node, source, pads) if pads else None
    layer = t.add(node, layer_type, inputs, config, weights)
    if padding is not None:
        layer.inputs = [padding]
        padding.owner = layer
    return layer


def _conv_transpose(t, node, _fused):
    source, kernel = node.input[0], t.constant(node.input[1])
    attrs = attributes(node)
    if (
        kernel is None
        or kernel.ndim != 4
        or t.layout_of[source].kind != CHANNELS_FIRST
        or int(attrs.get("group", 1)) != 1
        or attrs.get("output_shape")
    ):
        return None
    strides, dilations = _pair(attrs.get("strides"), 1), _pair(attrs.get("dilations"), 1)
    if strides is None or dilations is None:
        return None
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    extra = list(attrs.get("output_padding", [0, 0]))
    _, height, width = t.onnx_shape(source)
    _, out_height, out_width = t.onnx_shape(node.output[0])
    extents = [(k - 1) * d + 1 for k, d in zip(kernel.shape[2:], dilations)]
    if not any(pads):
        padding, output_padding = "valid", (None if not any(extra) else extra)
    elif (out_height, out_width) == (height * strides[0], width * strides[1]) and all(
        pads[axis] == max((size - 1) * stride + extent - size * stride, 0) // 2
        for axis, (size, stride, extent) in enumerate(zip((height, width), strides, extents))
    ):
        padding, output_padding = "same", None
    else:
        return None
    bias = t.constant(node.input[2]) if len(node.input) > 2 else None
    config = {
        "filters": kernel.shape[1],
        "kernel_size": list(kernel.shape[2:]),
        "strides": strides,
        "padding": padding,
        "output_padding": output_padding,
        "data_format": "channels_last",
        "dilation_rate": dilations,
        "activation": "linear",
        "use_bias": bias is not None,
    }
    weights = [("kernel", kernel.transpose(2, 3, 1, 0))] + ([("bias", bias)] if bias is not None else [])
    return t.add(node, "Conv2DTranspose", [source], config, weights)


def _pool(layer_type):
    def translate(t, node, _fused):
        source = node.input[0]
        attrs = attributes(node)
        kernel = attrs.get("kernel_shape", [])
        strides = _pair(attrs.get("strides"), 1)
        if len(kernel) != 2 or strides is None or t.layout_of[source].kind != CHANNELS_FIRST:
            return None
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            return None
        padding, pads = t.spatial_padding(node, source, kernel, strides, (1, 1))
        if layer_type == "AveragePooling2D" and (
            (padding == "same" and attrs.get("count_include_pad", 0)) or (pads and not attrs.get("count_include_pad"))
        ):
            return None  # Keras' 'same' average leaves the padding out; explicit zeros count it
        config = {"pool_size": list(kernel), "padding": padding, "strides": strides, "data_format": "channels_last"}
        return _with_padding(t, node, pads, source, layer_type, [source], config, [])

    return translate


def _global_pool(layer_type):
    def translate(t, node, _fused):
        source = node.input[0]
        if t.layout_of[source].kind != CHANNELS_FIRST or len(t.onnx_shape(source)) != 3:
            return None
        config = {"data_format": "channels_last", "keepdims": True}
        return t.add(node, layer_type, [source], config)

    return translate


def _reduce(layer_type):
    """ReduceMean/ReduceMax over both spatial axes of a feature map: a global pooling."""

    def translate(t, node, _fused):
        source = node.input[0]
        attrs = attributes(node)
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            constant = t.constant(node.input[1])
            axes = None if constant is None else [int(axis) for axis in np.ravel(constant)]
        if t.layout_of[source].kind != CHANNELS_FIRST or len(t.onnx_shape(source)) != 3 or axes is None:
            return None
        if sorted(axis % 4 for axis in axes) != [2, 3]:
            return None
        keepdims = bool(attrs.get("keepdims", 1))
        layout = Layout(CHANNELS_FIRST) if keepdims else Layout(PLAIN)
        return t.add(node, layer_type, [source], {"data_format": "channels_last", "keepdims": keepdims}, layout=layout)

    return translate


def _batch_normalization(t, node, _fused):
    source = node.input[0]
    parameters = [t.constant(name) for name in node.input[1:5]]
    layout = t.layout_of[source]
    if any(values is None for values in parameters) or (
        layout.kind != CHANNELS_FIRST and len(t.onnx_shape(source)) != 1
    ):
        return None
    if layout.kind == FLAT_CHW:  # BatchNorm1d of a flattened map: one statistic per value, in PyTorch's CHW order
        channels, height, width = layout.chw
        parameters = [values.reshape(channels, height, width).transpose(1, 2, 0).ravel() for values in parameters]
    gamma, beta, mean, variance = parameters
    config = {"axis": -1, "epsilon": user_float(attributes(node).get("epsilon", 1e-5)), "center": True, "scale": True}
    weights = [("gamma", gamma), ("beta", beta), ("moving_mean", mean), ("moving_variance", variance)]
    return t.add(node, "BatchNormalization", [source], config, weights)


def _relu_config(max_value=None):
    return {"max_value": max_value, "negative_slope": 0.0, "threshold": 0.0}


def _relu(t, node, fused):
    """Relu, and a Clip(0, 6) right after it, as torch 2.0 and older wrote ReLU6: one ReLU layer."""
    clip = t.single_consumer(node.output[0], "Clip")
    bounds = _clip_bounds(t, clip) if clip is not None else None
    if bounds is not None and bounds[0] == 0.0:
        fused.add(id(clip))
        return t.add(clip, "ReLU", [node.input[0]], _relu_config(bounds[1]), nodes=[node, clip], op="relu")
    return t.add(node, "ReLU", [node.input[0]], _relu_config())


def _clip_bounds(t, node):
    """``(low, high)`` of a Clip (attributes before opset 11, constant inputs since), None for an open bound;
    None when a bound is not a constant."""
    attrs = attributes(node)
    bounds = [attrs.get("min"), attrs.get("max")]
    for position in (1, 2):
        if len(node.input) > position and node.input[position]:
            value = t.constant(node.input[position])
            if value is None:
                return None
            bounds[position - 1] = value
    low, high = (None if bound is None else user_float(np.ravel(bound)[0]) for bound in bounds)
    return low, (high if high is not None and math.isfinite(high) else None)


def _clip(t, node, _fused):
    bounds = _clip_bounds(t, node)
    if bounds is None or bounds[0] != 0.0:
        return None
    return t.add(node, "ReLU", [node.input[0]], _relu_config(bounds[1]))


def _leaky_relu(t, node, _fused):
    slope = user_float(attributes(node).get("alpha", 0.01))
    return t.add(node, "LeakyReLU", [node.input[0]], {"negative_slope": slope})


def _prelu(t, node, _fused):
    source, slope = node.input[0], t.constant(node.input[1])
    layout = t.layout_of[source]
    if slope is None or layout.kind == FLAT_CHW:
        return None
    rank = len(t.onnx_shape(source))
    slope = slope.reshape((1,) * (rank - slope.ndim) + slope.shape)  # ONNX broadcasts from the right
    if layout.kind == CHANNELS_FIRST:
        slope = np.moveaxis(slope, 0, -1)
    shared = [axis + 1 for axis in range(rank) if slope.shape[axis] == 1]
    return t.add(node, "PReLU", [source], {"shared_axes": shared or None}, [("alpha", slope)])


def _elu(t, node, _fused):
    alpha = user_float(attributes(node).get("alpha", 1.0))
    if alpha == 1.0:
        return t.add(node, "Activation", [node.input[0]], {"activation": "elu"})
    return t.add(node, "ELU", [node.input[0]], {"alpha": alpha})


def _selu(t, node, _fused):
    attrs = attributes(node)
    if not np.allclose((attrs.get("alpha", 1.67326), attrs.get("gamma", 1.0507)), SELU_DEFAULTS, rtol=1e-4):
        return None
    return t.add(node, "Activation", [node.input[0]], {"activation": "selu"})


def _gelu(t, node, _fused):
    if attributes(node).get("approximate", "none") != "none":
        return None
    return t.add(node, "Activation", [node.input[0]], {"activation": "gelu"})


def _activation(t, node, _fused):
    return t.add(node, "Activation", [node.input[0]], {"activation": ACTIVATIONS[node.op_type]})


def _gated(activation, gate_op):
    """x * gate(x) (a Mul taking the gate and its own input) as one activation layer: SiLU, hard swish."""

    def translate(t, node, fused):
        source = node.input[0]
        product = t.single_consumer(node.output[0], "Mul")
        if gate_op == "HardSigmoid":
            attrs = attributes(node)
            if not np.allclose((attrs.get("alpha", 0.2), attrs.get("beta", 0.5)), (1 / 6, 0.5), rtol=1e-4):
                return None
        if product is not None and sorted(product.input) == sorted([source, node.output[0]]):
            fused.add(id(product))
            return t.add(
                product,
                "Activation",
                [source],
                {"activation": activation},
                tensor=product.output[0],
                op=activation,
                nodes=[node, product],
            )
        if gate_op == "Sigmoid":
            return t.add(node, "Activation", [source], {"activation": "sigmoid"})
        return t.add(node, "Activation", [source], {"activation": "hard_sigmoid"})

    return translate


def _softmax(t, node, _fused):
    source = node.input[0]
    rank = len(t.onnx_shape(source)) + 1
    axis = int(attributes(node).get("axis", -1)) % rank
    layout = t.layout_of[source]
    if (layout.kind == CHANNELS_FIRST and axis == 1) or (layout.kind == PLAIN and axis == rank - 1):
        return t.add(node, "Softmax", [source], {"axis": -1})
    return None


def _dense_weights(t, source, kernel):
    """A Dense kernel (in, out) whose rows follow the bundle's order of ``source``'s values."""
    layout = t.layout_of[source]
    if layout.kind == FLAT_CHW:
        channels, height, width = layout.chw
        return kernel.reshape(channels, height, width, -1).transpose(1, 2, 0, 3).reshape(kernel.shape)
    return kernel


def _gemm(t, node, _fused):
    source, matrix = node.input[0], t.constant(node.input[1])
    attrs = attributes(node)
    if matrix is None or matrix.ndim != 2 or attrs.get("transA", 0) or len(t.onnx_shape(source)) != 1:
        return None
    kernel = (matrix.T if attrs.get("transB", 0) else matrix) * np.float32(attrs.get("alpha", 1.0))
    bias = t.constant(node.input[2]) if len(node.input) > 2 else None
    if bias is not None:
        bias = np.broadcast_to(np.ravel(bias) * np.float32(attrs.get("beta", 1.0)), (kernel.shape[1],))
    return _dense(t, node, source, kernel, bias)


def _dense(t, node, source, kernel, bias, tensor=None, nodes=None):
    config = {"units": kernel.shape[1], "activation": "linear", "use_bias": bias is not None}
    weights = [("kernel", _dense_weights(t, source, kernel))] + ([("bias", bias)] if bias is not None else [])
    return t.add(node, "Dense", [source], config, weights, tensor=tensor, layout=Layout(PLAIN), nodes=nodes)


def _matmul(t, node, fused):
    """MatMul by a weight matrix, and the Add of a bias after it: one Linear."""
    source, matrix = node.input[0], t.constant(node.input[1])
    if matrix is None or matrix.ndim != 2 or len(t.onnx_shape(source)) != 1:
        return None
    addition = t.single_consumer(node.output[0], "Add")
    if addition is not None:
        other = next((name for name in addition.input if name != node.output[0]), None)
        bias = t.constant(other)
        if bias is not None and bias.size == matrix.shape[1]:
            fused.add(id(addition))
            return _dense(t, node, source, matrix, np.ravel(bias), tensor=addition.output[0], nodes=[node, addition])
    return _dense(t, node, source, matrix, None)


def _merge(t, node, _fused):
    data = [name for name in node.input if t.is_data(name)]
    if len(data) == len(node.input) and len(data) >= 2:
        kinds = {t.layout_of[name] for name in data}
        ranks = {len(t.onnx_shape(name)) for name in data}
        if len(kinds) != 1 or len(ranks) != 1:
            return None
        if node.op_type == "Div":
            config = {"args": [{"input": 0}, {"input": 1}], "kwargs": {}}
            return t.add(node, "ops.Divide", data, config)
        return t.add(node, MERGES[node.op_type], data, {})
    if len(data) == 1 and len(node.input) == 2 and node.op_type in OPERATIONS_WITH_CONSTANT:
        constant = t.constant(next(name for name in node.input if name != data[0]))
        if constant is None or constant.size > MAX_CONFIG_CONSTANT:
            return None
        value = _constant_for(t, data[0], constant)
        if value is None:
            return None
        args = [{"input": 0} if name == data[0] else value for name in node.input]
        return t.add(node, "ops." + OPERATIONS_WITH_CONSTANT[node.op_type], data, {"args": args, "kwargs": {}})
    return None


def _constant_for(t, source, constant):
    """A constant operand broadcast against ``source``, in the bundle's layout, as JSON (a number or lists)."""
    constant = np.asarray(constant, dtype=np.float64)
    if constant.size == 1:
        return user_float(constant.ravel()[0])
    layout = t.layout_of[source]
    rank = len(t.onnx_shape(source)) + 1
    if constant.ndim > rank or layout.kind == FLAT_CHW:
        return None
    full = constant.reshape((1,) * (rank - constant.ndim) + constant.shape)
    if layout.kind == CHANNELS_FIRST:
        full = np.moveaxis(full, 1, -1)
    return full.tolist()


def _concat(t, node, _fused):
    data = [name for name in node.input if t.is_data(name)]
    if len(data) != len(node.input) or len({t.layout_of[name] for name in data}) != 1:
        return None
    layout = t.layout_of[data[0]]
    rank = len(t.onnx_shape(data[0])) + 1
    axis = int(attributes(node).get("axis", 1)) % rank
    if axis == 0 or layout.kind == FLAT_CHW:
        return None
    if layout.kind == CHANNELS_FIRST:
        axis = rank - 1 if axis == 1 else axis - 1
    return t.add(node, "Concatenate", data, {"axis": -1 if axis == rank - 1 else axis})


def _flatten_layer(t, node, source, tensor=None, nodes=None):
    """A flattening of ``source``: a Flatten layer, or nothing when the values keep their order."""
    layout, shape = t.layout_of[source], t.onnx_shape(source)
    tensor = tensor or node.output[0]
    if len(shape) == 1:
        t.alias(tensor, source)
        return t.layer_of[source]
    if layout.kind == CHANNELS_FIRST and len(shape) == 3:
        flat = Layout(FLAT_CHW, shape) if shape[1] * shape[2] > 1 else Layout(PLAIN)
    elif layout.kind == PLAIN:
        flat = Layout(PLAIN)
    else:
        return None
    return t.add(node, "Flatten", [source], {"data_format": "channels_last"}, tensor=tensor, layout=flat, nodes=nodes)


def _flatten(t, node, _fused):
    if int(attributes(node).get("axis", 1)) != 1:
        return None
    return _flatten_layer(t, node, node.input[0])


def _reshape(t, node, _fused):
    source, tensor = node.input[0], node.output[0]
    shape, result = t.onnx_shape(source), t.onnx_shape(tensor)
    if len(result) == 1 and math.prod(shape) == result[0]:
        return _flatten_layer(t, node, source)
    # tf2onnx writes a Transpose of a 1x1 map (NCHW <-> NHWC) as a Reshape, and leaves some that change
    # nothing: the bundle's values do not move.
    kind = t.layout_of[source].kind
    if shape == result:
        return _identity(t, node, _fused)
    if kind == CHANNELS_FIRST and len(shape) == 3 and shape[1:] == (1, 1) and result == (1, 1, shape[0]):
        t.alias(tensor, source, Layout(PLAIN))
        return t.layer_of[source]
    if kind == PLAIN and len(shape) == 3 and shape[:2] == (1, 1) and result == (shape[2], 1, 1):
        t.alias(tensor, source, Layout(CHANNELS_FIRST))
        return t.layer_of[source]
    if kind == PLAIN and len(shape) > 0:
        return t.add(node, "Reshape", [source], {"target_shape": list(result)}, layout=Layout(PLAIN))
    return None


def _squeeze(t, node, _fused):
    source = node.input[0]
    shape, result = t.onnx_shape(source), t.onnx_shape(node.output[0])
    if t.layout_of[source].kind == CHANNELS_FIRST and len(shape) == 3 and shape[1:] == (1, 1) and result == shape[:1]:
        return _flatten_layer(t, node, source)
    return None


def _transpose(t, node, _fused):
    """A Transpose between NCHW and NHWC changes nothing in the bundle's layout: no layer."""
    source = node.input[0]
    perm = list(attributes(node).get("perm", []))
    layout = t.layout_of[source]
    if len(t.onnx_shape(source)) != 3:
        return None
    if layout.kind == CHANNELS_FIRST and perm == [0, 2, 3, 1]:
        t.alias(node.output[0], source, Layout(PLAIN))
        return t.layer_of[source]
    if layout.kind == PLAIN and perm == [0, 3, 1, 2]:
        t.alias(node.output[0], source, Layout(CHANNELS_FIRST))
        return t.layer_of[source]
    return None


def _identity(t, node, _fused):
    t.alias(node.output[0], node.input[0])
    return t.layer_of[node.input[0]]


def _dropout(t, node, _fused):
    attrs = attributes(node)
    rate = attrs.get("ratio")
    if rate is None and len(node.input) > 1:
        ratio = t.constant(node.input[1])
        rate = None if ratio is None else user_float(np.ravel(ratio)[0])
    config = {"rate": user_float(0.5 if rate is None else rate), "seed": None, "noise_shape": None}
    return t.add(node, "Dropout", [node.input[0]], config)


def _pad(t, node, _fused):
    source = node.input[0]
    attrs = attributes(node)
    pads = attrs.get("pads")
    if pads is None and len(node.input) > 1:
        constant = t.constant(node.input[1])
        pads = None if constant is None else [int(value) for value in np.ravel(constant)]
    value = t.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else attrs.get("value", 0.0)
    if (
        pads is None
        or len(pads) != 8
        or attrs.get("mode", "constant") != "constant"
        or float(np.ravel(value)[0] if np.size(value) else 0.0) != 0.0
        or t.layout_of[source].kind != CHANNELS_FIRST
        or any(pads[i] for i in (0, 1, 4, 5))
        or any(pad < 0 for pad in pads)
        or (len(node.input) > 3 and node.input[3])
    ):
        return None
    config = {"padding": [[pads[2], pads[6]], [pads[3], pads[7]]], "data_format": "channels_last"}
    return t.add(node, "ZeroPadding2D", [source], config)


def _resize(t, node, _fused):
    source = node.input[0]
    attrs = attributes(node)
    if attrs.get("mode", "nearest") != "nearest" or t.layout_of[source].kind != CHANNELS_FIRST:
        return None
    shape, result = t.onnx_shape(source), t.onnx_shape(node.output[0])
    if result[0] != shape[0] or any(out % size for out, size in zip(result[1:], shape[1:])):
        return None
    size = [out // size for out, size in zip(result[1:], shape[1:])]
    config = {"size": size, "data_format": "channels_last", "interpolation": "nearest"}
    return t.add(node, "UpSampling2D", [source], config)


TRANSLATORS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("MaxPooling2D"),
    "AveragePool": _pool("AveragePooling2D"),
    "GlobalAveragePool": _global_pool("GlobalAveragePooling2D"),
    "GlobalMaxPool": _global_pool("GlobalMaxPooling2D"),
    "ReduceMean": _reduce("GlobalAveragePooling2D"),
    "ReduceMax": _reduce("GlobalMaxPooling2D"),
    "BatchNormalization": _batch_normalization,
    "Relu": _relu,
    "Clip": _clip,
    "LeakyRelu": _leaky_relu,
    "PRelu": _prelu,
    "Elu": _elu,
    "Selu": _selu,
    "Gelu": _gelu,
    **{op: _activation for op in ACTIVATIONS},
    # After the plain activations: a Sigmoid that gates its own input is a SiLU.
    "Sigmoid": _gated("silu", "Sigmoid"),
    "HardSigmoid": _gated("hard_silu", "HardSigmoid"),
    "Softmax": _softmax,
    "Gemm": _gemm,
    "MatMul": _matmul,
    **{op: _merge for op in (*MERGES, "Div")},
    "Concat": _concat,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Transpose": _transpose,
    "Identity": _identity,
    "Dropout": _dropout,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
}


def translate(model, shapes, constants, where):
    """``(layers, heads)`` of ``model``: its bundle layers (``Layer`` objects, the input first, each after those
    it takes input from) and the layers whose outputs are the graph's float outputs, in the graph's order.
    ``shapes`` are the per-sample ONNX shapes of its float data tensors."""
    translation = Translation(model, shapes, constants, where)
    layers = translation.run()
    heads = []
    for value in model.graph.output:
        layer = translation.layer_of.get(value.name)
        if layer is not None and layer is not layers[0] and layer not in heads:
            heads.append(layer)
    return layers, heads
