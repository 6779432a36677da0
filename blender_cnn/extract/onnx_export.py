"""A design (or preset) saved as an ONNX model, as PyTorch would export it: from Python, the command line or a job.

``export_onnx`` checks the design (``core.design.validate_design``), draws
its random weights (``random_weights(design, seed)``, the weights the
designed scene shows) and writes them with ``onnx.helper``: no TensorFlow,
no PyTorch. The file reads as ``torch.onnx.export`` would write the same
network:

- opset 17 (PyTorch's default; onnxruntime runs it), one input ``input`` in
  NCHW with a symbolic batch axis ``batch``, one output ``output``;
- weights as initializers named after the layer: ``<layer>.weight`` and
  ``<layer>.bias``; batch normalization's also ``.running_mean`` and
  ``.running_var``; a separable convolution's ``.depthwise.weight``,
  ``.pointwise.weight`` and ``.bias``;
- nodes in PyTorch's scopes, ``/<layer>/<OpType>`` (``/conv1/Conv``,
  ``/conv1/Relu``; a second node of a type in a scope ``/<layer>/Mul_1``),
  their outputs ``/<layer>/<OpType>_output_0``.

Keras is channels-last, ONNX channels-first: kernels are transposed to ONNX's
layouts, 'same' padding becomes the explicit pads TensorFlow would place for
the design's input size (the odd one at the bottom and right), and axes are
moved. A Flatten of a map flattens it in ONNX's (C, H, W) order, as PyTorch
does, and the rows of the Dense that reads it are permuted to match, so the
file computes exactly what the design does; a Flatten read by anything else
transposes to (H, W, C) first.

``start_onnx_export`` runs it as a ``core.jobs`` job: in this Python when it
has the ``onnx`` package, else in the Python set in the preferences (the
extractor's, which has it) through this module's CLI::

    python -m blender_cnn.extract.onnx_export DESIGN.json OUT.onnx [--seed N]
"""

import json
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from ..core import jobs
from ..core.design import design_and_where, random_weights, total_parameters, validate_design
from ..core.errors import BlenderCNNError
from ..core.numpy_layers import SELU_ALPHA, SELU_SCALE, pair, window_extent
from ..core.pins import pinned
from .onnx_files import ONNX_SUFFIX

# The export writes with onnx alone; onnxruntime only reads.
ONNX_MODULES = ("onnx",)
OPSET = 17  # torch.onnx.export's default opset
IR_VERSION = 8  # the IR version PyTorch writes with opset 17
INPUT_NAME = "input"  # also the design's name of its input
OUTPUT_NAME = "output"
BATCH_AXIS = "batch"
# One protobuf message holds at most 2 GB; bigger models need external data files, which one .onnx file cannot be.
MAX_FILE_BYTES = 2**31 - 1
# Keras' (batch, height, width, channels) axis -> the same axis of ONNX's (batch, channels, height, width).
NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)
TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]


@dataclass(frozen=True)
class _Tensor:
    """A layer's output in the graph: its ONNX name and its Keras shape (no batch axis).

    A 3-axis Keras map (H, W, C) is (batch, C, H, W) in ONNX; other shapes keep Keras' order, except a
    flattened map kept in ONNX's (C, H, W) order: ``flat_order`` then holds the Keras index of each value.
    """

    name: str
    shape: tuple[int, ...]
    flat_order: np.ndarray | None = None


def export_onnx(design, path, seed=0, log=None):
    """Save ``design`` (a dict, or the path of a design or preset JSON file) as an ``.onnx`` model at ``path``.

    The model holds ``random_weights(design, seed)`` and takes NCHW inputs.
    Returns ``path``. Raises BlenderCNNError when the design is invalid (the
    reasons listed), holds a layer ONNX cannot express (naming it), the path
    does not end in ``.onnx`` or cannot be written, or ``onnx`` is missing.
    """
    design, where = design_and_where(design)
    path = check_onnx_path(path)
    infos = check_exportable(design, where)
    onnx = _import_onnx()
    model = design_model(design, seed, log=log)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        # The design was valid and every layer translatable: a fault of this translation, not of the design.
        raise BlenderCNNError(
            where, f"its ONNX model fails onnx's checker, a bug of the export to report ({error})"
        ) from None
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        onnx.save_model(model, path)
    except OSError as error:
        raise BlenderCNNError(path, f"cannot be written ({error.strerror or error})") from None
    if log:
        log(
            f"wrote {path}: {design['name']!r}, {total_parameters(infos)} parameters, design weights of seed {seed}, "
            f"ONNX opset {OPSET}, input NCHW"
        )
    return path


def design_model(design, seed=0, log=None):
    """The ``onnx.ModelProto`` of a valid ``design`` with ``random_weights(design, seed)``.

    ``log`` (optional) gets one ``layer NAME: OPS`` line per layer.
    """
    design, where = design_and_where(design)
    infos = check_exportable(design, where)
    onnx = _import_onnx()
    graph = _Exporter(onnx, infos, random_weights(design, seed)).graph(design["name"], log)
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="blender_cnn",
        doc_string=f"The design {design['name']!r} with its random weights of seed {seed}, as Blender CNN showed it",
    )
    onnx.helper.set_model_props(
        model,
        {"design": design["name"], "seed": str(int(seed)), "class_names": json.dumps(list(design["class_names"]))},
    )
    if model.ByteSize() > MAX_FILE_BYTES:
        raise BlenderCNNError(
            where,
            f"has {total_parameters(infos):,} parameters, {model.ByteSize() / 2**30:.1f} GB as ONNX; "
            "one ONNX file holds at most 2 GB",
        )
    return model


def check_exportable(design, where=None):
    """The layers' ``[DesignLayer]`` of a valid ``design`` that ONNX can express; else one BlenderCNNError naming
    the design and listing every layer it cannot, and why. Needs no ``onnx``: a UI calls it before a job starts."""
    design, where = design_and_where(design, where)
    infos = validate_design(design, where)
    lines = [f"{info.name}: {problem}" for info in infos[1:] if (problem := layer_problem(info)) is not None]
    if len(lines) == 1:
        raise BlenderCNNError(where, f"cannot be exported to ONNX: {lines[0]}")
    if lines:
        raise BlenderCNNError(where, f"cannot be exported to ONNX, {len(lines)} layers:\n  " + "\n  ".join(lines))
    return infos


def layer_problem(info):
    """Why the ``DesignLayer`` ``info`` (of a valid design) cannot be exported to ONNX, or None."""
    if info.type not in LAYER_CONVERTERS:
        return (
            f"a {info.type} layer has no ONNX translation here; the types translated are {', '.join(LAYER_CONVERTERS)}"
        )
    activation = info.config.get("activation", "linear")
    if activation in UNEXPORTABLE_ACTIVATIONS:
        return f"its activation {activation!r} {UNEXPORTABLE_ACTIVATIONS[activation]}"
    if activation not in ("linear", None, *ACTIVATION_BUILDERS):
        return (
            f"its activation {activation!r} has no ONNX translation here; the ones translated are "
            f"{', '.join(sorted(ACTIVATION_BUILDERS))}"
        )
    axis = info.config.get("axis", -1)
    if info.type in AXIS_FROM_THE_END and axis >= 0:
        # Keras (and the numpy forward pass) count the batch axis; the design's shapes count from a sample's first.
        ndim = len(info.output_shape)
        return (
            f"Keras counts its axis {axis} from the batch axis, the design's shapes from a sample's first axis, so "
            f"they disagree; give the axis counted from the end ({axis - ndim})"
        )
    return None


def check_onnx_path(path):
    """``path`` as a string; BlenderCNNError unless it names an ``.onnx`` file."""
    path = os.fspath(path)
    if not path.lower().endswith(ONNX_SUFFIX):
        raise BlenderCNNError(path, f"an ONNX model file must end in {ONNX_SUFFIX}")
    return path


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise BlenderCNNError(
            "onnx", f"is not importable in this Python; install it with 'python -m pip install {pinned('onnx')}'"
        ) from None
    return onnx


# ---------------------------------------------------------------- the graph


class _Nodes:
    """The graph's nodes and initializers, named in PyTorch's scope style."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes = []
        self.initializers = []
        self._used = Counter()  # (scope, op type) -> nodes made

    def add(self, scope, op_type, inputs, outputs=1, **attributes):
        """A node ``/<scope>/<op_type>[_n]``; returns its output's name (a list of names when ``outputs`` > 1)."""
        count = self._used[scope, op_type]
        self._used[scope, op_type] += 1
        node_name = f"/{scope}/{op_type}" + (f"_{count}" if count else "")
        names = [f"{node_name}_output_{index}" for index in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, names, name=node_name, **attributes))
        return names if outputs > 1 else names[0]

    def weight(self, name, array):
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def constant(self, scope, value, dtype=np.float32):
        return self.add(
            scope, "Constant", [], value=self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), "value")
        )

    def rename(self, old, new):
        for node in self.nodes:
            node.input[:] = [new if name == old else name for name in node.input]
            node.output[:] = [new if name == old else name for name in node.output]


def onnx_dims(shape):
    """A Keras shape (no batch axis) as ONNX's: a map (H, W, C) is (C, H, W), other shapes keep their order."""
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def onnx_axis(axis, rank):
    """The ONNX axis of a Keras ``axis`` (counted with the batch axis, as Keras does) of a tensor of ``rank`` axes
    (without the batch axis)."""
    full = int(axis) % (rank + 1)
    return NHWC_TO_NCHW_AXIS[full] if rank == 3 else full


def _pads(config, shape, window):
    """ONNX's ``pads`` (top, left, bottom, right) for a window over an (H, W, C) input, as TensorFlow pads."""
    strides, dilation = pair(config.get("strides") or window), pair(config.get("dilation_rate", 1))
    sides = [
        window_extent(shape[axis], (window[axis] - 1) * dilation[axis] + 1, strides[axis], config["padding"])[1:]
        for axis in (0, 1)
    ]
    return [sides[0][0], sides[1][0], sides[0][1], sides[1][1]]


def _window_attributes(config, shape, window):
    strides = pair(config.get("strides") or window)
    attributes = {"kernel_shape": list(window), "strides": list(strides), "pads": _pads(config, shape, window)}
    if "dilation_rate" in config:
        attributes["dilations"] = list(pair(config["dilation_rate"]))
    return attributes


class _Exporter:
    """Translates a validated design's layers (``DesignLayer``s in order) into ONNX nodes, one scope each."""

    def __init__(self, onnx, infos, weights):
        self.onnx = onnx
        self.infos = infos
        self.weights = weights
        self.nodes = _Nodes(onnx)
        self.output_layer = infos[-1].name
        self.readers = defaultdict(list)
        for info in infos[1:]:
            for name in info.inputs:
                self.readers[name].append(info)

    def graph(self, name, log=None):
        input_info = self.infos[0]
        tensors = {input_info.name: _Tensor(INPUT_NAME, tuple(input_info.output_shape))}
        for info in self.infos[1:]:
            before = len(self.nodes.nodes)
            tensors[info.name] = LAYER_CONVERTERS[info.type](self, info, [tensors[source] for source in info.inputs])
            if log:
                made = [node.op_type for node in self.nodes.nodes[before:] if node.op_type != "Constant"]
                log(f"layer {info.name}: {', '.join(made) or 'nothing (identity in inference)'}")
        result = tensors[self.output_layer]
        assert result.flat_order is None, "the output is read in Keras' order (_reads_any_order)"
        if result.name == INPUT_NAME:  # a network of dropouts only
            result = _Tensor(self.nodes.add(self.output_layer, "Identity", [result.name]), result.shape)
        self.nodes.rename(result.name, OUTPUT_NAME)
        helper, float_type = self.onnx.helper, self.onnx.TensorProto.FLOAT
        return helper.make_graph(
            self.nodes.nodes,
            name,
            [helper.make_tensor_value_info(INPUT_NAME, float_type, [BATCH_AXIS, *onnx_dims(input_info.output_shape)])],
            [helper.make_tensor_value_info(OUTPUT_NAME, float_type, [BATCH_AXIS, *onnx_dims(result.shape)])],
            self.nodes.initializers,
        )

    # ---------------------------------------------------------------- layout

    def _reads_any_order(self, name):
        """Whether every reader of the flat vector ``name`` computes the same from its values in another known
        order: a Dense (its rows are permuted to match) or a layer that works value by value, whose readers do too.
        """
        if name == self.output_layer:
            return False
        return all(self._takes_any_order(reader) for reader in self.readers[name])

    def _takes_any_order(self, info):
        if info.type == "Dense":
            return True
        per_value = info.type in ORDER_BLIND_TYPES or info.type == "Activation"
        return per_value and self._reads_any_order(info.name)

    def to_nhwc(self, scope, tensor):
        """``tensor``'s name, in Keras' own axis order (a map transposed to NHWC)."""
        assert tensor.flat_order is None, "a vector in ONNX's order is read by order-blind layers only"
        return (
            self.nodes.add(scope, "Transpose", [tensor.name], perm=TO_NHWC) if len(tensor.shape) == 3 else tensor.name
        )

    # ---------------------------------------------------------------- activations

    def activation(self, info, output, shape):
        """``output`` (a tensor name) through the layer's activation, in the layer's scope."""
        name = info.config.get("activation", "linear")
        if name in (None, "linear"):
            return output
        return ACTIVATION_BUILDERS[name](self.nodes, info.name, output, onnx_axis(-1, len(shape)), tuple(shape))

    def finish(self, info, output):
        """The layer's result: ``output`` through its activation, with the layer's output shape."""
        return _Tensor(self.activation(info, output, info.output_shape), tuple(info.output_shape))

    # ---------------------------------------------------------------- layers

    def conv2d(self, info, inputs):
        (x,) = inputs
        weights = self.weights[info.name]
        kernel = weights["kernel"]  # (kh, kw, in / groups, filters) -> (filters, in / groups, kh, kw)
        operands = [x.name, self.nodes.weight(f"{info.name}.weight", kernel.transpose(3, 2, 0, 1))]
        if "bias" in weights:
            operands.append(self.nodes.weight(f"{info.name}.bias", weights["bias"]))
        attributes = _window_attributes(info.config, x.shape, kernel.shape[:2])
        output = self.nodes.add(info.name, "Conv", operands, group=int(info.config.get("groups", 1)), **attributes)
        return self.finish(info, output)

    def depthwise_conv2d(self, info, inputs):
        (x,) = inputs
        weights = self.weights[info.name]
        bias = self.nodes.weight(f"{info.name}.bias", weights["bias"]) if "bias" in weights else None
        return self.finish(info, self._depthwise(info, x, weights["kernel"], f"{info.name}.weight", bias))

    def _depthwise(self, info, x, kernel, weight_name, bias=None):
        # Keras' output channel c * multiplier + m is output m of ONNX's group c: one group per channel.
        height, width, channels, multiplier = kernel.shape
        onnx_kernel = kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, height, width)
        operands = [x.name, self.nodes.weight(weight_name, onnx_kernel)] + ([bias] if bias else [])
        attributes = _window_attributes(info.config, x.shape, (height, width))
        return self.nodes.add(info.name, "Conv", operands, group=channels, **attributes)

    def separable_conv2d(self, info, inputs):
        (x,) = inputs
        weights = self.weights[info.name]
        depthwise = self._depthwise(info, x, weights["depthwise_kernel"], f"{info.name}.depthwise.weight")
        pointwise = weights["pointwise_kernel"]  # (1, 1, channels * multiplier, filters)
        operands = [depthwise, self.nodes.weight(f"{info.name}.pointwise.weight", pointwise.transpose(3, 2, 0, 1))]
        if "bias" in weights:
            operands.append(self.nodes.weight(f"{info.name}.bias", weights["bias"]))
        output = self.nodes.add(info.name, "Conv", operands, kernel_shape=[1, 1])
        return self.finish(info, output)

    def conv2d_transpose(self, info, inputs):
        (x,) = inputs
        weights, config = self.weights[info.name], info.config
        kernel = weights["kernel"]  # (kh, kw, filters, in) -> (in, filters, kh, kw)
        strides, dilation = pair(config["strides"]), pair(config["dilation_rate"])
        begins, ends, extras = [], [], []
        for axis in (0, 1):
            # ONNX scatters as Keras does, then cuts pads off; Keras' output may reach past the last tap, which
            # ONNX's output_padding adds (zeros, and the bias).
            extent = (kernel.shape[axis] - 1) * dilation[axis] + 1
            scattered = (x.shape[axis] - 1) * strides[axis] + extent
            size = info.output_shape[axis]
            begin = 0 if config["padding"] == "valid" else max(scattered - size, 0) // 2
            end = scattered - begin - size
            begins.append(begin)
            ends.append(max(end, 0))
            extras.append(max(-end, 0))
        operands = [x.name, self.nodes.weight(f"{info.name}.weight", kernel.transpose(3, 2, 0, 1))]
        if "bias" in weights:
            operands.append(self.nodes.weight(f"{info.name}.bias", weights["bias"]))
        attributes = {
            "kernel_shape": list(kernel.shape[:2]),
            "strides": list(strides),
            "dilations": list(dilation),
            "pads": begins + ends,
        }
        if any(extras):
            attributes["output_padding"] = extras
        return self.finish(info, self.nodes.add(info.name, "ConvTranspose", operands, **attributes))

    def zero_padding(self, info, inputs):
        (x,) = inputs
        (top, bottom), (left, right) = info.config["padding"]
        pads = self.nodes.constant(info.name, [0, 0, top, left, 0, 0, bottom, right], np.int64)
        return self.finish(info, self.nodes.add(info.name, "Pad", [x.name, pads], mode="constant"))

    def max_pooling(self, info, inputs):
        # ONNX's MaxPool never takes a pad as the maximum, as TensorFlow's 'same'.
        (x,) = inputs
        attributes = _window_attributes(info.config, x.shape, pair(info.config["pool_size"]))
        return self.finish(info, self.nodes.add(info.name, "MaxPool", [x.name], **attributes))

    def average_pooling(self, info, inputs):
        # count_include_pad=0: TensorFlow's 'same' averages the pixels inside the input only.
        (x,) = inputs
        attributes = _window_attributes(info.config, x.shape, pair(info.config["pool_size"]))
        output = self.nodes.add(info.name, "AveragePool", [x.name], count_include_pad=0, **attributes)
        return self.finish(info, output)

    def global_average_pooling(self, info, inputs):
        return self._global_pooling("GlobalAveragePool", info, inputs)

    def global_max_pooling(self, info, inputs):
        return self._global_pooling("GlobalMaxPool", info, inputs)

    def _global_pooling(self, op_type, info, inputs):
        (x,) = inputs
        output = self.nodes.add(info.name, op_type, [x.name])  # (batch, C, 1, 1), Keras' keepdims
        if not info.config.get("keepdims", False):
            output = self.nodes.add(info.name, "Flatten", [output], axis=1)
        return self.finish(info, output)

    def activation_layer(self, info, inputs):
        (x,) = inputs
        return _Tensor(self.activation(info, x.name, x.shape), tuple(info.output_shape), x.flat_order)

    def relu(self, info, inputs):
        # keras.activations.relu: x above the threshold (at most max_value), negative_slope * (x - threshold) below.
        (x,) = inputs
        config = info.config
        threshold, slope, ceiling = config["threshold"], config["negative_slope"], config["max_value"]
        if not threshold and slope and ceiling is None:
            output = self.nodes.add(info.name, "LeakyRelu", [x.name], alpha=float(slope))
        elif not threshold and not slope and ceiling is not None:
            low, high = (self.nodes.constant(info.name, value) for value in (0.0, ceiling))
            output = self.nodes.add(info.name, "Clip", [x.name, low, high])
        else:
            if threshold:
                output = self.nodes.add(info.name, "ThresholdedRelu", [x.name], alpha=float(threshold))
            else:
                output = self.nodes.add(info.name, "Relu", [x.name])
            if ceiling is not None:
                output = self.nodes.add(info.name, "Clip", [output, "", self.nodes.constant(info.name, ceiling)])
            if slope:
                below = self.nodes.add(info.name, "Sub", [self.nodes.constant(info.name, threshold), x.name])
                below = self.nodes.add(info.name, "Relu", [below])
                below = self.nodes.add(info.name, "Mul", [below, self.nodes.constant(info.name, slope)])
                output = self.nodes.add(info.name, "Sub", [output, below])
        return _Tensor(output, tuple(info.output_shape), x.flat_order)

    def leaky_relu(self, info, inputs):
        (x,) = inputs
        output = self.nodes.add(info.name, "LeakyRelu", [x.name], alpha=float(info.config["negative_slope"]))
        return _Tensor(output, tuple(info.output_shape), x.flat_order)

    def softmax(self, info, inputs):
        (x,) = inputs
        output = self.nodes.add(info.name, "Softmax", [x.name], axis=onnx_axis(info.config["axis"], len(x.shape)))
        return _Tensor(output, tuple(info.output_shape), x.flat_order)

    def dense(self, info, inputs):
        (x,) = inputs
        weights = self.weights[info.name]
        kernel = weights["kernel"]  # (in, units)
        if x.flat_order is not None:
            kernel = kernel[x.flat_order]  # row p reads the value ONNX's flatten put at p
        operands = [x.name, self.nodes.weight(f"{info.name}.weight", kernel.T)]
        if "bias" in weights:
            operands.append(self.nodes.weight(f"{info.name}.bias", weights["bias"]))
        return self.finish(info, self.nodes.add(info.name, "Gemm", operands, transB=1))

    def flatten(self, info, inputs):
        (x,) = inputs
        if len(x.shape) != 3:
            output = self.nodes.add(info.name, "Flatten", [x.name], axis=1)
            return _Tensor(output, tuple(info.output_shape), x.flat_order if len(x.shape) == 1 else None)
        height, width, channels = x.shape
        # ONNX flattens (C, H, W); Keras (H, W, C). The Keras index of each value ONNX's order puts in a row:
        order = np.arange(height * width * channels).reshape(height, width, channels).transpose(2, 0, 1).ravel()
        if np.array_equal(order, np.arange(order.size)):
            return _Tensor(self.nodes.add(info.name, "Flatten", [x.name], axis=1), tuple(info.output_shape))
        if self._reads_any_order(info.name):
            output = self.nodes.add(info.name, "Flatten", [x.name], axis=1)
            return _Tensor(output, tuple(info.output_shape), order)
        output = self.nodes.add(info.name, "Flatten", [self.to_nhwc(info.name, x)], axis=1)
        return _Tensor(output, tuple(info.output_shape))

    def reshape(self, info, inputs):
        (x,) = inputs
        shape = self.nodes.constant(info.name, [-1, *info.output_shape], np.int64)
        output = self.nodes.add(info.name, "Reshape", [self.to_nhwc(info.name, x), shape])
        if len(info.output_shape) == 3:
            output = self.nodes.add(info.name, "Transpose", [output], perm=TO_NCHW)
        return _Tensor(output, tuple(info.output_shape))

    def dropout(self, info, inputs):
        (x,) = inputs  # nothing in inference, as PyTorch's export in eval mode leaves it out
        return x

    def batch_normalization(self, info, inputs):
        (x,) = inputs
        weights, config = self.weights[info.name], info.config
        mean, variance = weights["moving_mean"], weights["moving_variance"]
        parameters = {
            "weight": weights.get("gamma", np.ones_like(mean)),
            "bias": weights.get("beta", np.zeros_like(mean)),
            "running_mean": mean,
            "running_var": variance,
        }
        if x.flat_order is not None:
            parameters = {key: value[x.flat_order] for key, value in parameters.items()}
        operands = [x.name] + [self.nodes.weight(f"{info.name}.{key}", value) for key, value in parameters.items()]
        axis = onnx_axis(config["axis"], len(x.shape))
        rank = len(x.shape) + 1
        # ONNX normalizes axis 1; another axis is moved there and back.
        to_axis_1 = [0, axis, *(a for a in range(1, rank) if a != axis)] if axis != 1 else None
        if to_axis_1:
            operands[0] = self.nodes.add(info.name, "Transpose", [x.name], perm=to_axis_1)
        output = self.nodes.add(info.name, "BatchNormalization", operands, epsilon=float(config["epsilon"]))
        if to_axis_1:
            output = self.nodes.add(info.name, "Transpose", [output], perm=list(np.argsort(to_axis_1)))
        return _Tensor(output, tuple(info.output_shape), x.flat_order)

    def rescaling(self, info, inputs):
        (x,) = inputs
        output = self.nodes.add(info.name, "Mul", [x.name, self.nodes.constant(info.name, info.config["scale"])])
        if info.config["offset"]:
            output = self.nodes.add(info.name, "Add", [output, self.nodes.constant(info.name, info.config["offset"])])
        return _Tensor(output, tuple(info.output_shape), x.flat_order)

    def add(self, info, inputs):
        output = inputs[0].name
        for other in inputs[1:]:
            output = self.nodes.add(info.name, "Add", [output, other.name])
        return _Tensor(output, tuple(info.output_shape))

    def concatenate(self, info, inputs):
        axis = onnx_axis(info.config["axis"], len(inputs[0].shape))
        output = self.nodes.add(info.name, "Concat", [x.name for x in inputs], axis=axis)
        return _Tensor(output, tuple(info.output_shape))


# Every designable type (core.layer_specs.designable_layer_types()) -> its translation.
LAYER_CONVERTERS = {
    "Conv2D": _Exporter.conv2d,
    "DepthwiseConv2D": _Exporter.depthwise_conv2d,
    "SeparableConv2D": _Exporter.separable_conv2d,
    "Conv2DTranspose": _Exporter.conv2d_transpose,
    "ZeroPadding2D": _Exporter.zero_padding,
    "MaxPooling2D": _Exporter.max_pooling,
    "AveragePooling2D": _Exporter.average_pooling,
    "GlobalAveragePooling2D": _Exporter.global_average_pooling,
    "GlobalMaxPooling2D": _Exporter.global_max_pooling,
    "Activation": _Exporter.activation_layer,
    "ReLU": _Exporter.relu,
    "LeakyReLU": _Exporter.leaky_relu,
    "Softmax": _Exporter.softmax,
    "Dense": _Exporter.dense,
    "Flatten": _Exporter.flatten,
    "Reshape": _Exporter.reshape,
    "Dropout": _Exporter.dropout,
    "BatchNormalization": _Exporter.batch_normalization,
    "Rescaling": _Exporter.rescaling,
    "Add": _Exporter.add,
    "Concatenate": _Exporter.concatenate,
}
# Layers that compute each value of a flat vector on its own (or the whole vector alike), so they read a
# flattened map in ONNX's order as well as in Keras' (see _Exporter._reads_any_order).
ORDER_BLIND_TYPES = frozenset({"Dropout", "Flatten", "ReLU", "LeakyReLU", "Softmax", "Rescaling", "BatchNormalization"})


# ---------------------------------------------------------------- activations as ONNX operators
# Each builder: (nodes, scope, x, the ONNX axis of its channels, its Keras shape) -> output name.


def _one(op_type, **attributes):
    return lambda nodes, scope, x, _axis, _shape: nodes.add(scope, op_type, [x], **attributes)


def _clip(low, high):
    def build(nodes, scope, x, _axis, _shape):
        return nodes.add(scope, "Clip", [x, nodes.constant(scope, low), nodes.constant(scope, high)])

    return build


def _on_axis(op_type):
    return lambda nodes, scope, x, axis, _shape: nodes.add(scope, op_type, [x], axis=axis)


def _silu(nodes, scope, x, _axis, _shape):
    return nodes.add(scope, "Mul", [x, nodes.add(scope, "Sigmoid", [x])])


def _log_sigmoid(nodes, scope, x, _axis, _shape):
    # -softplus(-x): log(sigmoid(x)) without its underflow for very negative x.
    negated = nodes.add(scope, "Neg", [x])
    return nodes.add(scope, "Neg", [nodes.add(scope, "Softplus", [negated])])


def _tanh_shrink(nodes, scope, x, _axis, _shape):
    return nodes.add(scope, "Sub", [x, nodes.add(scope, "Tanh", [x])])


def _squareplus(nodes, scope, x, _axis, _shape):
    square = nodes.add(scope, "Mul", [x, x])
    root = nodes.add(scope, "Sqrt", [nodes.add(scope, "Add", [square, nodes.constant(scope, 4.0)])])
    return nodes.add(scope, "Div", [nodes.add(scope, "Add", [x, root]), nodes.constant(scope, 2.0)])


def _sparse_plus(nodes, scope, x, _axis, _shape):
    # 0 below -1, (x + 1)^2 / 4 up to 1, x above: the quadratic of x clipped to [-1, 1], plus what passes 1.
    clipped = nodes.add(scope, "Clip", [x, nodes.constant(scope, -1.0), nodes.constant(scope, 1.0)])
    shifted = nodes.add(scope, "Add", [clipped, nodes.constant(scope, 1.0)])
    quadratic = nodes.add(scope, "Mul", [nodes.add(scope, "Mul", [shifted, shifted]), nodes.constant(scope, 0.25)])
    beyond = nodes.add(scope, "Relu", [nodes.add(scope, "Sub", [x, nodes.constant(scope, 1.0)])])
    return nodes.add(scope, "Add", [quadratic, beyond])


def _gelu(nodes, scope, x, _axis, _shape):
    # Keras' exact gelu, as PyTorch writes nn.GELU() before opset 20: 0.5 x (1 + erf(x / sqrt 2)).
    scaled = nodes.add(scope, "Div", [x, nodes.constant(scope, np.sqrt(2.0))])
    erf = nodes.add(scope, "Add", [nodes.add(scope, "Erf", [scaled]), nodes.constant(scope, 1.0)])
    return nodes.add(scope, "Mul", [nodes.add(scope, "Mul", [x, erf]), nodes.constant(scope, 0.5)])


def _mish(nodes, scope, x, _axis, _shape):
    # ONNX's Mish arrived in opset 18.
    return nodes.add(scope, "Mul", [x, nodes.add(scope, "Tanh", [nodes.add(scope, "Softplus", [x])])])


def _sparsemax(nodes, scope, x, axis, shape):
    # As numpy_layers._sparsemax: sorted descending, the support is where sorted - (cumsum - 1) / rank > 0,
    # tau = (sum of the support's values - 1) / its size, and the output max(x - tau, 0).
    channels = shape[-1]
    ordered, _indices = nodes.add(
        scope, "TopK", [x, nodes.constant(scope, [channels], np.int64)], outputs=2, axis=axis, largest=1, sorted=1
    )
    cumulative = nodes.add(scope, "CumSum", [ordered, nodes.constant(scope, axis, np.int64)])
    rank_shape = [1] * (len(shape) + 1)
    rank_shape[axis] = channels
    ranks = nodes.constant(scope, np.arange(1, channels + 1, dtype=np.float32).reshape(rank_shape))
    one = nodes.constant(scope, 1.0)
    threshold = nodes.add(scope, "Div", [nodes.add(scope, "Sub", [cumulative, one]), ranks])
    support = nodes.add(scope, "Greater", [nodes.add(scope, "Sub", [ordered, threshold]), nodes.constant(scope, 0.0)])
    axes = nodes.constant(scope, [axis], np.int64)
    size = nodes.add(
        scope, "ReduceSum", [nodes.add(scope, "Cast", [support], to=nodes.onnx.TensorProto.FLOAT), axes], keepdims=1
    )
    kept = nodes.add(scope, "Where", [support, cumulative, nodes.constant(scope, 0.0)])
    total = nodes.add(scope, "ReduceSum", [kept, axes], keepdims=1)
    tau = nodes.add(scope, "Div", [nodes.add(scope, "Sub", [total, one]), size])
    return nodes.add(scope, "Relu", [nodes.add(scope, "Sub", [x, tau])])


# Keras' activation names (core.numpy_layers.ACTIVATIONS) -> their ONNX operators, in the layer's scope.
ACTIVATION_BUILDERS = {
    "relu": _one("Relu"),
    "relu6": _clip(0.0, 6.0),
    "leaky_relu": _one("LeakyRelu", alpha=0.2),
    "elu": _one("Elu", alpha=1.0),
    "selu": _one("Selu", alpha=SELU_ALPHA, gamma=SELU_SCALE),
    "celu": _one("Celu", alpha=1.0),
    "sigmoid": _one("Sigmoid"),
    "hard_sigmoid": _one("HardSigmoid", alpha=1 / 6, beta=0.5),
    "sparse_sigmoid": _one("HardSigmoid", alpha=0.5, beta=0.5),
    "log_sigmoid": _log_sigmoid,
    "tanh": _one("Tanh"),
    "hard_tanh": _clip(-1.0, 1.0),
    "tanh_shrink": _tanh_shrink,
    "soft_shrink": _one("Shrink", bias=0.5, lambd=0.5),
    "hard_shrink": _one("Shrink", bias=0.0, lambd=0.5),
    "softplus": _one("Softplus"),
    "softsign": _one("Softsign"),
    "squareplus": _squareplus,
    "sparse_plus": _sparse_plus,
    "silu": _silu,
    "swish": _silu,
    "hard_silu": _one("HardSwish"),
    "hard_swish": _one("HardSwish"),
    "gelu": _gelu,
    "mish": _mish,
    "exponential": _one("Exp"),
    "softmax": _on_axis("Softmax"),
    "log_softmax": _on_axis("LogSoftmax"),
    "sparsemax": _sparsemax,
}
# Types whose non-negative axis Keras counts with the batch axis and the design's shapes without it.
AXIS_FROM_THE_END = frozenset({"Concatenate", "BatchNormalization"})
# Activations a design may name that the file cannot hold, and why.
UNEXPORTABLE_ACTIVATIONS = {
    "glu": "halves the channels, which the design's shapes do not count (they keep the input's)",
}


# ---------------------------------------------------------------- the job and the command line


def start_onnx_export(design, path, seed=0, python_path="", in_process=None):
    """Start exporting ``design`` (a dict) to ``path`` as a ``core.jobs`` job; its ``result_path`` is ``path``.

    It runs in this Python when ``onnx`` is importable here (``in_process``
    None), else in ``python_path`` (the extractor's Python, which has it).
    The design and the path are checked first, so a bad one raises
    BlenderCNNError before any job starts.
    """
    design, where = design_and_where(design)
    path = os.path.abspath(check_onnx_path(path))
    infos = check_exportable(design, where)
    seed = int(seed)
    task = jobs.Task(
        "Exporting",
        where,
        path,
        run=lambda out_path, log, _should_stop: export_onnx(design, out_path, seed, log=log),
        command=lambda out_path: jobs.module_command(
            "extract.onnx_export", jobs.DESIGN_FILE, out_path, "--seed", str(seed)
        ),
        progress_total=len(infos) - 1,
        inputs=jobs.design_input(design),
        starting="writing the ONNX model...",
        needs=ONNX_MODULES,
    )
    return jobs.start_job(task, python_path, in_process)


def main(argv=None):
    parser = jobs.design_cli(
        "extract.onnx_export",
        "Save a design or preset (JSON) as an ONNX model file (.onnx, NCHW input, opset 17) with the design's "
        "random weights, as PyTorch would export it. Needs the onnx package, not TensorFlow. See docs/designing.md.",
        "out",
        "the ONNX model file to write (.onnx)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the seed of the design's random weights, as the designer's Build Scene uses (default 0)",
    )
    args = parser.parse_args(argv)
    return jobs.run_cli(lambda: export_onnx(args.design, args.out, args.seed, log=print))


if __name__ == "__main__":
    sys.exit(main())
