"""A TensorFlow graph's operations translated into the Keras layers that compute the same thing (for ``tf_graphs.py``).

The operations from the network's input to its output become Keras layers
(``Conv2D`` + ``BiasAdd`` + ``Relu`` becomes one ``Conv2D`` layer with
``activation="relu"``), and every weight of those layers is an expression of
the stored variables (a bias may be reshaped on its way to the addition, a
``MatMul`` kernel transposed), computed with numpy for every epoch. So
extraction after this (``keras_graph.flatten_model``, gradients, the bundle)
is the one path every other format takes, and the bundle's activations are
what TensorFlow computes for the graph. A graph that uses an operation without
such a layer is refused with the operation's name. The layers are named after
the name scopes of their operations and variables.
"""

import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import BlenderCNNError, first_line
from .tf_graph_structure import IF_OPS, Flow, Node, Values

SHOWN_NAMES = 6
ACTIVATIONS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Elu": "elu",
    "Selu": "selu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Softmax": "softmax",
}
ADDS = {"Add", "AddV2", "BiasAdd"}
AFFINE_OPS = ADDS | {"Sub", "Mul", "RealDiv"}
MERGES = {
    "Add": "Add",
    "AddV2": "Add",
    "Sub": "Subtract",
    "Mul": "Multiply",
    "Maximum": "Maximum",
    "Minimum": "Minimum",
}


# --- Translating the graph into Keras layers ---------------------------------------------------------------


@dataclass
class Context:
    where: str  # the file the graph is in
    it: str  # how a message refers to the graph
    hint: str  # what to do when the graph cannot be translated
    what: str = ""  # what the file is, said when it cannot be translated


@dataclass
class _Plan:
    """One Keras layer: its class and arguments, the tensors it takes and the one it equals, its weights."""

    kind: str
    arguments: dict
    inputs: list  # source refs
    output: tuple  # the source ref whose value it computes
    node: Node  # the operation it is named after
    weights: list = field(default_factory=list)  # [values -> array], in the Keras layer's weight order
    variables: list = field(default_factory=list)  # names of the variables its weights come from


class Translator:
    """The Keras model equal to a graph from ``input_name`` to ``output``, and its weights for each checkpoint."""

    def __init__(self, keras, graph, input_name, output, shown_input_name, reader, reader_path, context):
        self.keras, self.graph, self.context = keras, graph, context
        consumers = graph.consumers()
        self.flow = Flow(graph, input_name, consumers)
        self.values = Values(graph, reader, context.where)
        self.input_name = input_name
        self.output = self.flow.source(output)
        if self.output[0] == input_name or self.output[0] not in self.flow.dynamic:
            raise BlenderCNNError(
                context.where,
                f"{context.what + ', and ' if context.what else ''}"
                f"{context.it} does not compute its output from its input",
            )
        self.order = self._needed_order()
        self.readers = {}  # source ref -> the needed operations that take it, once per input
        for name in self.order:
            if name != input_name:
                for ref in self._dynamic_inputs(self.graph.nodes[name]):
                    self.readers.setdefault(ref, []).append(name)
        self.plans, self.tensors, self.absorbed = [], {}, set()
        self._check_variables(
            reader,
            reader_path,
            {
                variable
                for name in self.order
                for ref in self.graph.nodes[name].inputs
                if self.flow.is_static(ref)
                for variable in self.values.variables_of(ref)
            },
        )
        self._translate()
        self.model = self._build(shown_input_name)

    # -- the operations from the input to the output, each after those it takes
    def _dynamic_inputs(self, node):
        return [self.flow.source(ref) for ref in node.inputs if self.flow.source(ref)[0] in self.flow.dynamic]

    def _needed_order(self):
        order, visited, stack = [], set(), [(self.output[0], False)]
        while stack:
            name, done = stack.pop()
            if done:
                order.append(name)
                continue
            if name in visited:
                continue
            visited.add(name)
            stack.append((name, True))
            if name != self.input_name:
                stack.extend((ref[0], False) for ref in self._dynamic_inputs(self.graph.node(name)))
        return order

    def _only_consumer(self, ref):
        """The one needed operation that takes ``ref``, if nothing else (nor the output) does."""
        readers = self.readers.get(ref, ())
        if len(readers) != 1 or ref == self.output:
            return None
        return self.graph.nodes[readers[0]]

    def _unsupported(self, node, reason=""):
        what = f"{self.context.what}, and " if self.context.what else ""
        if not reason and node.op in (*IF_OPS, "Switch", "Merge", "RefSwitch", "RefMerge"):
            reason = (
                "a tf.cond on a value fed at run time, such as a training flag; give it a default with "
                "tf.compat.v1.placeholder_with_default(False, []) and save again"
            )
        reason = f" ({reason})" if reason else ""
        return BlenderCNNError(
            self.context.where,
            f"{what}{self.context.it} uses the operation {node.label!r} "
            f"({node.op}){reason}, which no Keras layer computes here; "
            f"{self.context.hint}",
        )

    # -- the translation
    def _translate(self):
        shape = self._input_shape(self.graph.node(self.input_name))
        self.tensors[(self.input_name, 0)] = self.keras.Input(shape=shape)
        self.input_shape = shape
        for name in self.order:
            if name == self.input_name or name in self.absorbed:
                continue
            node = self.graph.node(name)
            handler = _HANDLERS.get(node.op)
            if handler is None:
                raise self._unsupported(node)
            try:
                handler(self, node)
            except BlenderCNNError:
                raise
            except Exception as error:  # an operation with attributes or inputs it should not have
                raise self._unsupported(node, first_line(error)) from None

    def _input_shape(self, node):
        if node.op != "Placeholder":
            raise self._unsupported(node, "the input is not a placeholder")
        shape = node.attr["shape"].shape
        if shape.unknown_rank or len(shape.dim) < 2:
            raise BlenderCNNError(
                self.context.where,
                f"its input {node.label!r} has no known shape; only inputs of a known rank are supported",
            )
        return tuple(None if dim.size < 0 else int(dim.size) for dim in shape.dim[1:])

    def _tensor(self, ref):
        return self.tensors[ref]

    def _static(self, node, position):
        """The source of input ``position`` if it is a constant (or variable), else None."""
        ref = self.flow.source(node.inputs[position])
        return ref if self.flow.is_static(ref) else None

    def _add(self, kind, arguments, inputs, output, node, weights=(), static_refs=()):
        variables = []
        for ref in static_refs:
            variables += [variable.name for variable in self.values.variables_of(ref) if variable.name not in variables]
        plan = _Plan(kind, arguments, list(inputs), output, node, list(weights), variables)
        layer = self._make(plan, f"bcnn_translating_{len(self.plans)}")
        self.tensors[output] = self._call(plan, layer, [self.tensors[ref] for ref in inputs])
        self.plans.append(plan)

    def _make(self, plan, name):
        try:
            return getattr(self.keras.layers, plan.kind)(**plan.arguments, name=name)
        except Exception as error:  # Keras refuses the arguments (a stride and a dilation, say)
            raise self._unsupported(plan.node, f"as a {plan.kind} layer: {first_line(error)}") from None

    def _call(self, plan, layer, inputs):
        try:
            return layer(inputs if len(inputs) > 1 else inputs[0])
        except Exception as error:  # shapes Keras cannot combine the way the graph does
            raise self._unsupported(plan.node, f"as a {plan.kind} layer: {first_line(error)}") from None

    def _absorb(self, node):
        self.absorbed.add(node.name)
        return (node.name, 0)

    def _bias_after(self, ref, channels):
        """``(bias weight, ref)``: a vector added right after a convolution or product, and the sum it gives."""
        consumer = self._only_consumer(ref)
        if consumer is None or consumer.op not in ADDS or len(consumer.inputs) != 2:
            return None, None, ref
        sources = [self.flow.source(input_ref) for input_ref in consumer.inputs]
        if sources.count(ref) != 1:
            return None, None, ref
        other = consumer.inputs[1 - sources.index(ref)]
        other = self.flow.source(other)
        if not self.flow.is_static(other):
            return None, None, ref
        value = self.values(other)
        if value.size != channels or value.ndim < 1 or value.shape[-1] != channels:
            return None, None, ref
        return (lambda values: values(other).reshape(-1)), other, self._absorb(consumer)

    def _activation_after(self, ref):
        consumer = self._only_consumer(ref)
        if consumer is not None and consumer.op in ACTIVATIONS:
            return ACTIVATIONS[consumer.op], self._absorb(consumer)
        if consumer is not None and consumer.op == "LeakyRelu" and np.isclose(consumer.attr["alpha"].f, 0.2):
            return "leaky_relu", self._absorb(consumer)
        return None, ref

    def _check_nhwc(self, node):
        if "data_format" in node.attr and node.attr["data_format"].s not in (b"", b"NHWC"):
            raise self._unsupported(
                node, f"data format {node.attr['data_format'].s.decode()}; only NHWC (channels last) is supported"
            )

    def convolution(self, node):
        self._check_nhwc(node)
        kernel = self._static(node, 1)
        if kernel is None:
            raise self._unsupported(node, "its filter is computed from the input")
        padding = node.attr["padding"].s.decode().lower()
        if padding not in ("same", "valid"):
            raise self._unsupported(node, f"{padding} padding")
        x = self.flow.source(node.inputs[0])
        value = self.values(kernel)
        strides = list(node.attr["strides"].list.i) or [1, 1, 1, 1]
        dilations = list(node.attr["dilations"].list.i) or [1, 1, 1, 1]
        depthwise = node.op == "DepthwiseConv2dNative"
        channels = value.shape[2] * value.shape[3] if depthwise else value.shape[3]
        bias_weight, bias_ref, ref = self._bias_after((node.name, 0), channels)
        activation, ref = self._activation_after(ref)
        arguments = {
            "kernel_size": tuple(value.shape[:2]),
            "strides": tuple(strides[1:3]),
            "padding": padding,
            "dilation_rate": tuple(dilations[1:3]),
            "use_bias": bias_weight is not None,
            "activation": activation,
        }
        if depthwise:
            arguments["depth_multiplier"] = int(value.shape[3])
            kind = "DepthwiseConv2D"
        else:
            in_channels = self._tensor(x).shape[-1]
            groups = in_channels // value.shape[2] if in_channels and value.shape[2] else 1
            arguments.update(filters=int(value.shape[3]), groups=int(groups))
            kind = "Conv2D"
        weights = [lambda values: values(kernel)] + ([bias_weight] if bias_weight else [])
        self._add(kind, arguments, [x], ref, node, weights, [kernel] + ([bias_ref] if bias_ref else []))

    def matmul(self, node):
        kernel = self._static(node, 1)
        if kernel is None or node.attr["transpose_a"].b or self._static(node, 0) is not None:
            raise self._unsupported(node, "only a computed matrix times a constant one is a Dense layer")
        x = self.flow.source(node.inputs[0])
        if len(self._tensor(x).shape) != 2:
            raise self._unsupported(node, "its input is not a batch of vectors")
        transpose = node.attr["transpose_b"].b
        value = self.values(kernel)
        units = value.shape[0] if transpose else value.shape[1]
        bias_weight, bias_ref, ref = self._bias_after((node.name, 0), units)
        activation, ref = self._activation_after(ref)
        weights = [(lambda values: values(kernel).T) if transpose else (lambda values: values(kernel))]
        weights += [bias_weight] if bias_weight else []
        self._add(
            "Dense",
            {"units": int(units), "use_bias": bias_weight is not None, "activation": activation},
            [x],
            ref,
            node,
            weights,
            [kernel] + ([bias_ref] if bias_ref else []),
        )

    def fused_batch_norm(self, node):
        self._check_nhwc(node)
        if node.attr["is_training"].b:
            raise self._unsupported(node, "it normalizes with the statistics of each batch (is_training=True)")
        refs = [self._static(node, position) for position in range(1, 5)]
        if any(ref is None for ref in refs):
            raise self._unsupported(node, "its statistics are computed from the input")
        gamma, beta, mean, variance = refs
        weights = [lambda values, ref=ref: values(ref).reshape(-1) for ref in refs]
        self._add(
            "BatchNormalization",
            {"epsilon": float(node.attr["epsilon"].f)},
            [self.flow.source(node.inputs[0])],
            (node.name, 0),
            node,
            weights,
            refs,
        )

    def activation(self, node):
        x = [self.flow.source(node.inputs[0])]
        if node.op == "Relu6":
            self._add("ReLU", {"max_value": 6.0}, x, (node.name, 0), node)
        elif node.op == "Softmax":
            self._add("Softmax", {"axis": -1}, x, (node.name, 0), node)
        elif node.op == "LeakyRelu":
            self._add("LeakyReLU", {"negative_slope": float(node.attr["alpha"].f)}, x, (node.name, 0), node)
        else:
            self._add("Activation", {"activation": ACTIVATIONS[node.op]}, x, (node.name, 0), node)

    def pooling(self, node):
        self._check_nhwc(node)
        if node.op == "MaxPoolV2":
            size, strides = [self._static(node, position) for position in (1, 2)]
            if size is None or strides is None:
                raise self._unsupported(node, "its window is computed from the input")
            size, strides = list(self.values(size)), list(self.values(strides))
        else:
            size, strides = list(node.attr["ksize"].list.i), list(node.attr["strides"].list.i)
        if len(size) != 4 or size[0] != 1 or size[3] != 1 or strides[0] != 1 or strides[3] != 1:
            raise self._unsupported(node, "it pools across the batch or the channels")
        kind = "MaxPooling2D" if node.op.startswith("MaxPool") else "AveragePooling2D"
        self._add(
            kind,
            {
                "pool_size": (int(size[1]), int(size[2])),
                "strides": (int(strides[1]), int(strides[2])),
                "padding": node.attr["padding"].s.decode().lower(),
            },
            [self.flow.source(node.inputs[0])],
            (node.name, 0),
            node,
        )

    def reduction(self, node):
        x = self.flow.source(node.inputs[0])
        axes = self._static(node, 1)
        rank = len(self._tensor(x).shape)
        if axes is None or rank != 4:
            raise self._unsupported(node, "only a mean or maximum over height and width is a global pooling")
        if sorted(int(axis) % rank for axis in np.ravel(self.values(axes))) != [1, 2]:
            raise self._unsupported(node, "only a mean or maximum over height and width is a global pooling")
        kind = "GlobalAveragePooling2D" if node.op == "Mean" else "GlobalMaxPooling2D"
        self._add(kind, {"keepdims": bool(node.attr["keep_dims"].b)}, [x], (node.name, 0), node)

    def reshape(self, node):
        x = self.flow.source(node.inputs[0])
        in_shape = self._tensor(x).shape
        if node.op == "Squeeze":
            axes = {axis % len(in_shape) for axis in node.attr["squeeze_dims"].list.i} or {
                axis for axis, size in enumerate(in_shape) if size == 1
            }
            target = [size for axis, size in enumerate(in_shape) if axis not in axes and axis > 0]
        elif node.op == "ExpandDims":
            axis = self._static(node, 1)
            if axis is None:
                raise self._unsupported(node, "its axis is computed from the input")
            target = list(in_shape[1:])
            position = int(self.values(axis)) % (len(in_shape) + 1)
            if position == 0:
                raise self._unsupported(node, "it adds a batch axis")
            target.insert(position - 1, 1)
        else:
            target = self._reshape_target(node)
        if any(size is None for size in target):
            raise self._unsupported(node, f"its shape {target} is not known")
        flat_size = -1 if None in in_shape[1:] else int(np.prod(in_shape[1:]))
        if len(target) == 1 and len(in_shape) > 2 and target[0] in (-1, flat_size):
            self._add("Flatten", {}, [x], (node.name, 0), node)
        else:
            self._add("Reshape", {"target_shape": tuple(int(size) for size in target)}, [x], (node.name, 0), node)

    def _reshape_target(self, node):
        """The shape of each sample a Reshape gives: its shape input without the batch size."""
        shape = self._static(node, 1)
        if shape is not None:
            return [int(size) for size in np.ravel(self.values(shape))[1:]]
        shape_node = self.graph.node(self.flow.source(node.inputs[1])[0])
        if shape_node.op == "Pack":  # (batch size taken from the input, constants...), as Keras' Flatten writes it
            rest = [self._static(shape_node, position) for position in range(1, len(shape_node.inputs))]
            if all(ref is not None for ref in rest):
                return [int(self.values(ref)) for ref in rest]
        if shape_node.op == "ConcatV2" and len(shape_node.inputs) == 3 and self._static(shape_node, 1) is not None:
            return [int(size) for size in np.ravel(self.values(self._static(shape_node, 1)))]
        raise self._unsupported(node, "its shape is computed in a way the import does not follow")

    def padding(self, node):
        pads = self._static(node, 1)
        x = self.flow.source(node.inputs[0])
        if pads is None or len(self._tensor(x).shape) != 4:
            raise self._unsupported(node, "only constant padding of height and width is a ZeroPadding2D layer")
        value = np.asarray(self.values(pads)).reshape(-1, 2)
        if node.op == "PadV2":
            constant = self._static(node, 2)
            if constant is None or float(self.values(constant)) != 0.0:
                raise self._unsupported(node, "it pads with a value other than zero")
        if value[0].any() or value[3].any():
            raise self._unsupported(node, "it pads the batch or the channels")
        self._add(
            "ZeroPadding2D",
            {"padding": (tuple(int(n) for n in value[1]), tuple(int(n) for n in value[2]))},
            [x],
            (node.name, 0),
            node,
        )

    def concatenation(self, node):
        count = node.attr["N"].i if "N" in node.attr else len(node.inputs) - 1
        inputs = [self.flow.source(ref) for ref in node.inputs[:count]]
        axis = self._static(node, count)
        if axis is None or any(self.flow.source(ref)[0] not in self.flow.dynamic for ref in node.inputs[:count]):
            raise self._unsupported(node, "only a concatenation of computed tensors along a constant axis is a layer")
        self._add("Concatenate", {"axis": int(self.values(axis))}, inputs, (node.name, 0), node)

    def elementwise(self, node):
        """A merge of computed tensors (Add, Multiply...) or arithmetic with a constant (a scale, a shift)."""
        dynamic = [
            position
            for position in range(len(node.inputs))
            if self.flow.source(node.inputs[position])[0] in self.flow.dynamic
        ]
        if len(dynamic) == len(node.inputs) and (node.op in MERGES or node.op == "AddN"):
            inputs = [self.flow.source(ref) for ref in node.inputs]
            shapes = {tuple(self._tensor(ref).shape[1:]) for ref in inputs}
            if len(shapes) != 1:
                raise self._unsupported(node, "it broadcasts tensors of different shapes")
            self._add(MERGES.get(node.op, "Add"), {}, inputs, (node.name, 0), node)
            return
        if (
            len(dynamic) != 1
            or node.op not in AFFINE_OPS
            or len(node.inputs) != 2
            or not self.flow.is_static(node.inputs[1 - dynamic[0]])
        ):
            raise self._unsupported(node)
        self._affine(node, dynamic[0])

    def _affine(self, node, position):
        """``x * a + b`` with constant ``a``, ``b``: a BatchNormalization (tf.nn.batch_normalization, Keras 3's
        inference batch norm), a Rescaling (constant numbers), or per-channel scale and shift."""
        x = self.flow.source(node.inputs[position])
        steps, ref, current = [], (node.name, 0), node
        while True:
            dynamic_first = self.flow.source(current.inputs[0]) == (x if not steps else steps[-1][3])
            constant = self.flow.source(current.inputs[1 if dynamic_first else 0])
            if current.op == "RealDiv" and not dynamic_first:
                raise self._unsupported(current, "a constant divided by a computed tensor")
            steps.append((current.op, constant, dynamic_first, (current.name, 0)))
            ref = (current.name, 0)
            following = self._only_consumer(ref)
            if (
                following is None
                or following.op not in AFFINE_OPS
                or len(following.inputs) != 2
                or [self.flow.source(r) for r in following.inputs].count(ref) != 1
                or not self.flow.is_static([r for r in following.inputs if self.flow.source(r) != ref][0])
            ):
                break
            if following.op == "RealDiv" and self.flow.source(following.inputs[0]) != ref:
                break
            self._absorb(following)
            current = following
        channels = self._tensor(x).shape[-1]
        constants = [constant for _, constant, _, _ in steps]
        matched = self._batch_normalization(steps)
        if matched is not None and all(self.values(part).size in (1, channels) for part in matched[1] if part):
            epsilon, parts = matched
            present = [part for part in parts if part is not None]
            arguments = {"epsilon": epsilon, "scale": parts[0] is not None, "center": parts[1] is not None}
            self._add(
                "BatchNormalization",
                arguments,
                [x],
                ref,
                node,
                [
                    lambda values, part=part: np.broadcast_to(values(part).reshape(-1), (channels,)).copy()
                    for part in present
                ],
                present,
            )
            return

        def scale_and_offset(values):
            scale, offset = np.float32(1), np.float32(0)
            for op, constant, dynamic_first, _ in steps:
                value = values(constant)
                if op == "Mul":
                    scale, offset = scale * value, offset * value
                elif op in ADDS:
                    offset = offset + value
                elif op == "Sub":
                    scale, offset = (scale, offset - value) if dynamic_first else (-scale, value - offset)
                else:  # RealDiv, x / value
                    scale, offset = scale / value, offset / value
            return np.asarray(scale, np.float32), np.asarray(offset, np.float32)

        scale, offset = scale_and_offset(self.values)
        if scale.size == 1 and offset.size == 1 and not any(self.values.variables_of(ref) for ref in constants):
            self._add(
                "Rescaling", {"scale": float(scale.reshape(())), "offset": float(offset.reshape(()))}, [x], ref, node
            )
            return
        for value in (scale, offset):
            if value.size != 1 and (value.size != channels or value.shape[-1] != channels):
                raise self._unsupported(node, "its constant varies along more than the channels")
        # Per channel: a batch normalization with mean 0, variance 1, epsilon 0 computes x * scale + offset.
        self._add(
            "BatchNormalization",
            {"epsilon": 0.0},
            [x],
            ref,
            node,
            [
                lambda values: np.broadcast_to(scale_and_offset(values)[0].reshape(-1), (channels,)).copy(),
                lambda values: np.broadcast_to(scale_and_offset(values)[1].reshape(-1), (channels,)).copy(),
                lambda values: np.zeros(channels, np.float32),
                lambda values: np.ones(channels, np.float32),
            ],
            constants,
        )

    def _batch_normalization(self, steps):
        """``(epsilon, [gamma, beta, mean, variance])`` if ``x * a + b`` is tf.nn.batch_normalization's
        ``x * (rsqrt(variance + epsilon) [* gamma]) + (beta - mean * that)``, else None."""
        if [op for op, *_ in steps] not in (["Mul", "AddV2"], ["Mul", "Add"]) or not all(s[2] for s in steps):
            return None
        factor, shift = steps[0][1], steps[1][1]
        node = self.graph.nodes.get(factor[0])
        gamma = None
        if node is not None and node.op == "Mul":
            operands = [self.flow.source(ref) for ref in node.inputs]
            roots = [ref for ref in operands if self.graph.nodes.get(ref[0]) and self.graph.nodes[ref[0]].op == "Rsqrt"]
            if not roots:
                return None
            root = self.graph.nodes[roots[0][0]]
            gamma = [ref for ref in operands if ref != roots[0]][0]
        elif node is not None and node.op == "Rsqrt":
            root = node
        else:
            return None
        total = self.graph.nodes.get(self.flow.source(root.inputs[0])[0])
        if total is None or total.op not in ("Add", "AddV2"):
            return None
        terms = [self.flow.source(ref) for ref in total.inputs]
        small = [ref for ref in terms if not self.values.variables_of(ref) and self.values(ref).size == 1]
        if len(small) != 1:
            return None
        variance = [ref for ref in terms if ref != small[0]][0]
        subtraction = self.graph.nodes.get(shift[0])
        if subtraction is None or subtraction.op != "Sub":
            return None
        beta = self.flow.source(subtraction.inputs[0])
        product = self.graph.nodes.get(self.flow.source(subtraction.inputs[1])[0])
        if product is None or product.op != "Mul":
            return None
        operands = [self.flow.source(ref) for ref in product.inputs]
        if factor not in operands:
            return None
        mean = [ref for ref in operands if ref != factor][0]
        return float(self.values(small[0]).reshape(())), [gamma, beta, mean, variance]

    # -- the Keras model
    def _build(self, input_name):
        names = _layer_names(self.plans, input_name)
        keras = self.keras
        model_input = keras.Input(shape=self.input_shape, name=input_name)
        tensors = {(self.input_name, 0): model_input}
        self.layers = []
        for plan, name in zip(self.plans, names):
            layer = self._make(plan, name)
            tensors[plan.output] = self._call(plan, layer, [tensors[ref] for ref in plan.inputs])
            self.layers.append((plan, layer))
        self.tensors = None
        return keras.Model(model_input, tensors[self.output], name=_keras_name(input_name) + "_graph")

    def _check_variables(self, reader, where, variables):
        missing = sorted(
            {variable.name for variable in variables if reader is None or not reader.has_tensor(variable.key)}
        )
        if missing:
            raise BlenderCNNError(
                where, f"does not fit {os.path.basename(self.context.where)}: it lacks the variables {shown(missing)}"
            )

    def assign(self, reader, where):
        """Put the weights of the checkpoint ``reader`` (read from ``where``) into the model; return the model."""
        values = Values(self.graph, reader, where)
        needed = {name for plan, _ in self.layers for name in plan.variables}
        self._check_variables(
            reader, where, [variable for variable in self.graph.variables.values() if variable.name in needed]
        )
        for plan, layer in self.layers:
            for variable, weight in zip(layer.weights, plan.weights):
                try:
                    value = np.asarray(weight(values), dtype=np.float32)
                except ValueError as error:  # a variable of another shape than the graph's first checkpoint had
                    raise BlenderCNNError(
                        where,
                        f"does not fit {os.path.basename(self.context.where)}: the weights "
                        f"of {', '.join(plan.variables)} do not ({first_line(error)})",
                    ) from None
                if tuple(value.shape) != tuple(variable.shape):
                    raise BlenderCNNError(
                        where,
                        f"does not fit {os.path.basename(self.context.where)}: the weight "
                        f"{variable.name} of {', '.join(plan.variables) or plan.node.label} "
                        f"has shape {tuple(value.shape)}, the graph's "
                        f"{tuple(variable.shape)}",
                    )
                variable.assign(value)
        return self.model


_HANDLERS = {
    "Conv2D": Translator.convolution,
    "DepthwiseConv2dNative": Translator.convolution,
    "MatMul": Translator.matmul,
    "FusedBatchNorm": Translator.fused_batch_norm,
    "FusedBatchNormV2": Translator.fused_batch_norm,
    "FusedBatchNormV3": Translator.fused_batch_norm,
    **{op: Translator.activation for op in (*ACTIVATIONS, "LeakyRelu")},
    "MaxPool": Translator.pooling,
    "MaxPoolV2": Translator.pooling,
    "AvgPool": Translator.pooling,
    "Mean": Translator.reduction,
    "Max": Translator.reduction,
    "Reshape": Translator.reshape,
    "Squeeze": Translator.reshape,
    "ExpandDims": Translator.reshape,
    "Pad": Translator.padding,
    "PadV2": Translator.padding,
    "ConcatV2": Translator.concatenation,
    **{op: Translator.elementwise for op in (*AFFINE_OPS, *MERGES, "AddN")},
}


# --- Layer names -------------------------------------------------------------------------------------------


def _layer_names(plans, input_name):
    """A Keras name for each plan: the name scope of its operation, up to that of its variables (``conv1`` for
    ``conv1/Conv2D`` and ``conv1/kernel``), the variables' scope for an operation at the top, else the operation's
    name (``MaxPool``); without the scope all share (a model's), unique, ``/`` written ``_``."""
    suffix = _scope_suffix(plans)
    paths = []
    for plan in plans:
        op_scope, _, base = plan.node.label.rpartition("/")
        ops = (
            [part.removesuffix(suffix) if suffix and part != suffix else part for part in op_scope.split("/")]
            if op_scope
            else []
        )
        variables = _common_scope(plan.variables).split("/") if _common_scope(plan.variables) else []
        match = _match_scope(ops, variables) if variables else None
        if match is not None and match[1] == "":
            parts = ops[: match[0] + len(variables)]
        else:
            parts = ops or variables or [base]
        paths.append((parts, base))
    while paths and all(len(parts) > 1 for parts, _ in paths) and len({parts[0] for parts, _ in paths}) == 1:
        paths = [(parts[1:], base) for parts, base in paths]
    names = [_keras_name("_".join(parts)) for parts, _ in paths]
    taken, unique = {_keras_name(input_name)}, []
    repeated = {name for name in names if names.count(name) > 1}
    for name, (_, base) in zip(names, paths):
        candidate = name
        if candidate in taken and name in repeated:
            candidate = f"{name}_{_keras_name(base)}"
        number = 2
        while candidate in taken:
            candidate, number = f"{name}_{number}", number + 1
        taken.add(candidate)
        unique.append(candidate)
    return unique


def _scope_suffix(plans):
    """The suffix (``_1``) a traced function added to every scope of its layers (``seq_1/conv_1`` for the
    variables ``seq/conv/kernel``), found from the layers with variables; None if there is no one such suffix."""
    suffixes = set()
    for plan in plans:
        op_scope = plan.node.label.rpartition("/")[0]
        variable_scope = _common_scope(plan.variables)
        if op_scope and variable_scope:
            match = _match_scope(op_scope.split("/"), variable_scope.split("/"))
            suffixes.add(match[1] if match else None)
    return suffixes.pop() if len(suffixes) == 1 and None not in suffixes else None


def _match_scope(ops, variables):
    """``(position, suffix)`` where the parts of a variable scope appear in an operation's scope, each with the same
    suffix (``""`` or ``_1``), or None."""
    for position in range(len(ops) - len(variables) + 1):
        suffixes = {
            op[len(variable) :] if op.startswith(variable) else None for op, variable in zip(ops[position:], variables)
        }
        if len(suffixes) == 1:
            found = suffixes.pop()
            if found == "" or (found is not None and re.fullmatch(r"_\d+", found)):
                return position, found
    return None


def _common_scope(names):
    scopes = [name.split("/")[:-1] for name in names]
    if not scopes:
        return ""
    common = []
    for parts in zip(*scopes):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common)


def _keras_name(name):
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "layer"


def shown(names):
    names = list(names)
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more
