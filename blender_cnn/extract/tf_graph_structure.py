"""The structure of a TensorFlow graph read as a protobuf (read by ``tf_graphs.py`` and ``tf_graph_layers.py``).

A GraphDef's nodes with the functions it calls inlined and conditionals on a
constant settled (``Graph``), how its tensors depend on the network's input
(``Flow``), the input and output of a TF1 training graph that has no
signature, and the values of the tensors that depend on no input: constants
and variables of one checkpoint, through the arithmetic that reshapes,
transposes or combines them, computed with numpy (``Values``).
"""

import re
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..core.errors import BlenderCNNError, first_line

TF1_HINT = (
    "pass the network as a Keras model, model.to_json() file or preset with --architecture FILE; its weights "
    "are matched to the checkpoint's variables by name, else by order and shape"
)

# Operations that hand a tensor on unchanged (in inference).
PASS_THROUGH = {
    "Identity",
    "IdentityN",
    "Snapshot",
    "StopGradient",
    "PreventGradient",
    "CheckNumerics",
    "EnsureShape",
    "Cast",
}
VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp"}
CALL_OPS = {"StatefulPartitionedCall", "PartitionedCall"}
IF_OPS = {"If", "StatelessIf"}  # tf.cond in TF 2 graphs; TF 1 graphs have Switch and Merge
# Operations that read only a tensor's shape: what follows them is computed from sizes, not from values.
SHAPE_OPS = {"Shape", "ShapeN", "Size", "Rank"}
# A name scope of TF1 dropout (tf.nn.dropout, tf.compat.v1.layers.dropout): the identity in inference.
DROPOUT_SCOPE = re.compile(r"^dropout(_\d+)?$")
# Scopes of what minimize() adds to a TF1 graph; never part of the network.
TRAINING_SCOPE = re.compile(
    r"^(gradients|Adam|SGD|GradientDescent|Momentum|RMSProp|Adagrad|Adadelta|Ftrl|train)"
    r"(_\d+)?$"
)
FLOAT_TYPES = {1, 2, 14, 19}  # DT_FLOAT, DT_DOUBLE, DT_BFLOAT16, DT_HALF
INPUT_TYPES = FLOAT_TYPES | {4}  # and DT_UINT8 images
WEIGHTED_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}


# --- The graph ---------------------------------------------------------------------------------------------


def tensor_ref(text):
    name, _, index = text.partition(":")
    return name, int(index) if index else 0


@dataclass(frozen=True)
class Variable:
    key: str  # its key in the checkpoint
    name: str  # the name it was given


@dataclass
class Node:
    name: str  # unique in the graph (inlined functions' nodes carry their call's name)
    label: str  # the name its program gave it, for naming layers
    op: str
    inputs: list  # [(node name, output index)]
    controls: list
    attr: object  # the NodeDef's attributes


class Graph:
    """The nodes of a GraphDef, the functions it calls inlined (their outputs as aliases of the returned tensors)."""

    def __init__(self, where, library):
        self.where = where
        self.nodes = {}
        self.aliases = {}  # (node, output) -> (node, output)
        self.variables = {}  # node name -> Variable
        self.functions = {function.signature.name: function for function in library.function}
        self.bound_inputs = {}  # function name -> saved object ids of its captured inputs (SavedModels)
        self.saved_variables = {}  # saved object id -> Variable
        self._captured = []  # (ref, Variable) of captured inputs, known once every node is in
        self._depth = 0

    def add_graph_def(self, graph_def):
        for node_def in graph_def.node:
            inputs, controls = [], []
            for text in node_def.input:
                if text.startswith("^"):
                    controls.append(text[1:])
                else:
                    inputs.append(tensor_ref(text))
            self._add(node_def.name, node_def.name, node_def, inputs, controls)

    def finish(self):
        """Settle what needs every node: captured variables, and conditionals on a constant (a
        ``placeholder_with_default`` such as ``training=False``), replaced by the branch they take."""
        for ref, variable in self._captured:
            self.variables.setdefault(self.resolve(ref)[0], variable)
        for node in [node for node in self.nodes.values() if node.op in IF_OPS]:
            condition = self._constant(node.inputs[0]) if node.inputs else None
            branch = node.attr["then_branch" if condition else "else_branch"].func.name
            if condition is None or branch not in self.functions:
                continue
            del self.nodes[node.name]
            outputs = self._inline(branch, node.name + "/", node.inputs[1:], node.label + "/")
            for index, ref in enumerate(outputs):
                self.aliases[(node.name, index)] = ref
        self._settle_switches()

    def _settle_switches(self):
        """TF 1 conditionals: a ``Switch`` on a constant passes its data to one output, the other one is dead, and so
        is every operation that takes a dead tensor; a ``Merge`` gives its one live input."""
        switches = {}
        for node in self.nodes.values():
            if node.op in ("Switch", "RefSwitch") and len(node.inputs) == 2:
                condition = self._constant(node.inputs[1])
                if condition is not None:
                    switches[node.name] = int(bool(condition))
        if not switches:
            return
        consumers, control_consumers = {}, {}
        for node in self.nodes.values():
            for ref in node.inputs:
                consumers.setdefault(self.resolve(ref), []).append(node.name)
            for control in node.controls:
                control_consumers.setdefault(control, []).append(node.name)
        dead_refs = {(name, 1 - taken) for name, taken in switches.items()}
        dead, queue = set(), [consumer for ref in dead_refs for consumer in consumers.get(ref, ())]
        while queue:
            name = queue.pop()
            node = self.nodes[name]
            if name in dead:
                continue
            if node.op in ("Merge", "RefMerge") and any(
                self.resolve(ref) not in dead_refs and self.resolve(ref)[0] not in dead for ref in node.inputs
            ):
                continue
            dead.add(name)
            queue += [consumer for index in range(8) for consumer in consumers.get((name, index), ())]
            queue += control_consumers.get(name, [])
        for name in dead:
            del self.nodes[name]
        for name, taken in switches.items():
            if name in self.nodes:
                self.aliases[(name, taken)] = self.nodes[name].inputs[0]
        for node in list(self.nodes.values()):
            if node.op in ("Merge", "RefMerge") and node.name not in dead:
                live = [
                    ref
                    for ref in node.inputs
                    if self.resolve(ref) not in dead_refs and self.resolve(ref)[0] not in dead
                ]
                if len(live) == 1:
                    self.aliases[(node.name, 0)] = live[0]

    def _constant(self, ref):
        """The value of a condition that is a constant, through identities and ``placeholder_with_default``; else None."""
        import tensorflow as tf

        for _ in range(100):
            ref = self.resolve(ref)
            node = self.nodes.get(ref[0])
            if node is None:
                return None
            if node.op == "Const":
                value = tf.make_ndarray(node.attr["value"].tensor)
                return bool(value) if value.size == 1 else None
            if node.op not in ("Identity", "PlaceholderWithDefault", "Snapshot") or not node.inputs:
                return None
            ref = node.inputs[0]
        return None

    def resolve(self, ref):
        for _ in range(10000):
            if ref not in self.aliases:
                return ref
            ref = self.aliases[ref]
        raise BlenderCNNError(self.where, f"has a cycle of function calls at {ref[0]!r}")

    def node(self, name):
        node = self.nodes.get(name)
        if node is None:
            raise BlenderCNNError(self.where, f"refers to an operation {name!r} it does not hold")
        return node

    def _add(self, name, label, node_def, inputs, controls):
        callee = node_def.attr["f"].func.name if node_def.op in CALL_OPS else node_def.op
        if callee in self.functions:
            for index, ref in enumerate(self._inline(callee, name + "/", inputs)):
                self.aliases[(name, index)] = ref
            return
        self.nodes[name] = Node(name, label, node_def.op, inputs, controls, node_def.attr)

    def _inline(self, function_name, prefix, arguments, label_prefix=""):
        function = self.functions[function_name]
        self._depth += 1
        if self._depth > 64:
            raise BlenderCNNError(self.where, f"calls functions more than 64 deep ({function_name})")
        arguments_def = function.signature.input_arg
        bound = self.bound_inputs.get(function_name, [])
        for position, node_id in zip(range(len(arguments_def) - len(bound), len(arguments_def)), bound):
            if node_id in self.saved_variables and position < len(arguments):
                self._captured.append((arguments[position], self.saved_variables[node_id]))
        for argument, ref in zip(arguments_def, arguments):
            self.aliases[(prefix + argument.name, 0)] = ref
        offsets = {node_def.name: self._output_offsets(node_def) for node_def in function.node_def}

        def function_ref(text):
            parts = text.split(":")
            if len(parts) == 1:
                return prefix + parts[0], 0
            node_name, output, index = parts[0], parts[1], int(parts[2]) if len(parts) > 2 else 0
            return prefix + node_name, offsets.get(node_name, {}).get(output, 0) + index

        for node_def in function.node_def:
            inputs, controls = [], []
            for text in node_def.input:
                if text.startswith("^"):
                    controls.append(prefix + text[1:])
                else:
                    inputs.append(function_ref(text))
            self._add(prefix + node_def.name, label_prefix + node_def.name, node_def, inputs, controls)
        self._depth -= 1
        return [function_ref(function.ret[argument.name]) for argument in function.signature.output_arg]

    def _output_offsets(self, node_def):
        """``{output argument name: index of its first tensor}`` of a function's node (FunctionDefs name outputs)."""
        from tensorflow.python.framework import op_def_registry

        callee = node_def.attr["f"].func.name if node_def.op in CALL_OPS else node_def.op
        if callee in self.functions and node_def.op not in CALL_OPS:
            return {argument.name: index for index, argument in enumerate(self.functions[callee].signature.output_arg)}
        op_def = op_def_registry.get(node_def.op)
        if op_def is None:
            return {}
        offsets, position = {}, 0
        for argument in op_def.output_arg:
            offsets[argument.name] = position
            if argument.number_attr:
                position += node_def.attr[argument.number_attr].i
            elif argument.type_list_attr:
                position += len(node_def.attr[argument.type_list_attr].list.type)
            else:
                position += 1
        return offsets

    def consumers(self):
        """``{node name: [names of the nodes that take one of its outputs]}`` (data inputs only)."""
        found = {}
        for node in self.nodes.values():
            for ref in node.inputs:
                found.setdefault(self.resolve(ref)[0], []).append(node.name)
        return found


# --- Finding a TF1 graph's network -------------------------------------------------------------------------


def find_input_and_output(graph):
    """The placeholder the network takes and the tensor it gives, in a training graph that has no signature.

    The input is the placeholder whose values reach a convolution or matrix
    product; the output is the last operation computed from it that gives a
    batch of numbers (the softmax after the logits, not the loss, which also
    takes the labels, nor an argmax or a summary). Whether every operation on
    the way has a layer is the translation's to say.
    """
    found = []
    consumers = graph.consumers()
    for node in graph.nodes.values():
        shape = node.attr["shape"].shape
        if (
            node.op == "Placeholder"
            and node.attr["dtype"].type in INPUT_TYPES
            and not shape.unknown_rank
            and len(shape.dim) >= 2
        ):  # a batch of something: not a keep_prob, a learning rate, a flag
            region, depth = _forward_region(graph, node.name, consumers)
            if any(graph.nodes[name].op in WEIGHTED_OPS for name in region):
                found.append((node.name, region, depth))
    if not found:
        raise BlenderCNNError(
            graph.where, "has no placeholder whose values reach a convolution or matrix product; " + TF1_HINT
        )
    if len(found) > 1:
        raise BlenderCNNError(
            graph.where,
            f"has several placeholders feeding the network "
            f"({', '.join(name for name, _, _ in found)}); only networks with one "
            "input are supported",
        )
    input_name, region, depth = found[0]
    translation = Flow(graph, input_name, consumers)
    numbers = {name for name in region if name == input_name or _gives_numbers(graph.nodes[name])}
    sinks = [
        name
        for name in numbers
        if name != input_name
        and name not in translation.collapsed
        and not any(consumer in numbers for consumer in consumers.get(name, ()))
    ]
    if not sinks:
        raise BlenderCNNError(graph.where, f"computes nothing from the placeholder {input_name!r}; " + TF1_HINT)
    deepest = max(depth[name] for name in sinks)
    last = sorted({translation.source((name, 0)) for name in sinks if depth[name] == deepest})
    if len(last) > 1:
        raise BlenderCNNError(
            graph.where,
            f"has several outputs ({', '.join(name for name, _ in last)}); only networks with one output are supported",
        )
    return input_name, last[0]


def _gives_numbers(node):
    """True when an operation's first output is floats, and not one number (a loss, a mean of everything)."""
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(node.op)
    if op_def is not None:
        if not op_def.output_arg:
            return False
        argument = op_def.output_arg[0]
        if argument.type:
            dtype = argument.type
        elif argument.type_attr:
            dtype = node.attr[argument.type_attr].type
        elif argument.type_list_attr and node.attr[argument.type_list_attr].list.type:
            dtype = node.attr[argument.type_list_attr].list.type[0]
        else:
            dtype = 1
        if dtype not in FLOAT_TYPES:
            return False
    shapes = node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else ()
    return not (shapes and not shapes[0].unknown_rank and len(shapes[0].dim) == 0)


def _forward_region(graph, input_name, consumers):
    """The operations the input reaches that take nothing else fed at run time but flags (``keep_prob``,
    ``training``), outside the training ops, and each one's depth (longest path) from the input."""
    flow = Flow(graph, input_name, consumers)
    region, depth = {input_name}, {input_name: 0}
    queue = deque([input_name])
    while queue:
        name = queue.popleft()
        for consumer_name in consumers.get(name, ()):
            consumer = graph.nodes[consumer_name]
            if any(TRAINING_SCOPE.match(part) for part in consumer.label.split("/")[:-1] or [""]):
                continue
            takes_only_known = all(
                graph.resolve(ref)[0] in region or flow.is_static(ref) or flow.is_sized(ref) or flow.is_flagged(ref)
                for ref in consumer.inputs
            )
            if consumer_name in flow.collapsed or takes_only_known:
                if depth.get(consumer_name, -1) < depth[name] + 1:
                    depth[consumer_name] = depth[name] + 1
                    region.add(consumer_name)
                    queue.append(consumer_name)
    return region, depth


class Flow:
    """Which tensors depend on the network's input, which are constants, and what a tensor really is
    (through identities and dropout)."""

    def __init__(self, graph, input_name, consumers):
        self.graph = graph
        self.dynamic = _reached(graph, [input_name], consumers, stop=SHAPE_OPS)
        shapes = [
            name
            for name in {consumer for name in self.dynamic for consumer in consumers.get(name, ())}
            if graph.nodes[name].op in SHAPE_OPS
        ]
        self.sized = _reached(graph, shapes, consumers) - self.dynamic  # computed from the input's sizes only
        fed, flags = [], []
        for node in graph.nodes.values():
            if node.name == input_name:
                continue
            if node.op == "Placeholder":
                shape = node.attr["shape"].shape
                (flags if not shape.unknown_rank and not shape.dim else fed).append(node.name)
            elif node.op.startswith(("Random", "TruncatedNormal")):
                fed.append(node.name)
        self.fed = _reached(graph, fed, consumers)  # depends on data fed (labels) or drawn at run time
        self.flagged = _reached(graph, flags, consumers)  # depends on one number fed: keep_prob, training
        self.collapsed = {}  # node name -> the tensor a dropout scope passes on
        scopes = {}
        for name in self.dynamic:
            parts = graph.nodes[name].label.split("/")
            for position, part in enumerate(parts[:-1]):
                if DROPOUT_SCOPE.match(part):
                    scope = name[: len(name) - len("/".join(parts[position + 1 :]))]
                    scopes.setdefault(scope, []).append(name)
                    break
        for scope, members in scopes.items():
            outside = {
                graph.resolve(ref)
                for member in members
                for ref in graph.nodes[member].inputs
                if not graph.resolve(ref)[0].startswith(scope) and graph.resolve(ref)[0] in self.dynamic
            }
            if len(outside) == 1:
                self.collapsed.update({member: next(iter(outside)) for member in members})

    def is_static(self, ref):
        name = self.graph.resolve(ref)[0]
        return name not in self.dynamic and name not in self.fed and name not in self.sized and name not in self.flagged

    def is_sized(self, ref):
        return self.graph.resolve(ref)[0] in self.sized

    def is_flagged(self, ref):
        name = self.graph.resolve(ref)[0]
        return name in self.flagged and name not in self.fed

    def source(self, ref):
        """The tensor ``ref`` is, past identities, casts and dropout."""
        for _ in range(100000):
            ref = self.graph.resolve(ref)
            name, index = ref
            if name in self.collapsed:
                ref = self.collapsed[name]
                continue
            node = self.graph.nodes.get(name)
            if node is None or node.op not in PASS_THROUGH or not node.inputs:
                return ref
            ref = node.inputs[index if node.op == "IdentityN" else 0]
        raise BlenderCNNError(self.graph.where, f"has a cycle of identities at {ref[0]!r}")


def _reached(graph, starts, consumers, stop=()):
    reached, queue = set(starts), list(starts)
    while queue:
        for consumer in consumers.get(queue.pop(), ()):
            if consumer not in reached and graph.nodes[consumer].op not in stop:
                reached.add(consumer)
                queue.append(consumer)
    return reached


# --- Constants and variables -------------------------------------------------------------------------------


class Values:
    """The value of a tensor that depends on no input: constants and variables of one checkpoint, through the
    arithmetic that reshapes, transposes or combines them, computed with numpy."""

    UNARY = {
        "Neg": np.negative,
        "Rsqrt": lambda x: 1 / np.sqrt(x),
        "Sqrt": np.sqrt,
        "Square": np.square,
        "Reciprocal": lambda x: 1 / x,
        "Exp": np.exp,
        "Log": np.log,
        "Abs": np.abs,
    }
    BINARY = {
        "Add": np.add,
        "AddV2": np.add,
        "BiasAdd": np.add,
        "Sub": np.subtract,
        "Mul": np.multiply,
        "RealDiv": np.divide,
        "Maximum": np.maximum,
        "Minimum": np.minimum,
    }

    def __init__(self, graph, reader, where):
        self.graph, self.reader, self.where = graph, reader, where
        self.cache = {}

    def __call__(self, ref):
        ref = self.graph.resolve(ref)
        if ref not in self.cache:
            try:
                self.cache[ref] = self._compute(ref)
            except BlenderCNNError:
                raise
            except Exception as error:  # numpy's or TensorFlow's: a constant that does not compute, a damaged file
                raise BlenderCNNError(
                    self.where, f"cannot compute the graph's constant {ref[0]!r} ({first_line(error)})"
                ) from None
        return self.cache[ref]

    def _compute(self, ref):
        import tensorflow as tf

        name, index = ref
        variable = self.graph.variables.get(name)
        if variable is not None:
            return np.asarray(self.reader.get_tensor(variable.key))
        node = self.graph.node(name)
        op = node.op

        def argument(position):
            return self(node.inputs[position])

        if op == "Const":
            return tf.make_ndarray(node.attr["value"].tensor)
        if op in PASS_THROUGH or op in ("ReadVariableOp", "PlaceholderWithDefault"):
            value = argument(index if op == "IdentityN" else 0)
            return value.astype(tf.dtypes.as_dtype(node.attr["DstT"].type).as_numpy_dtype) if op == "Cast" else value
        if op in self.UNARY:
            return self.UNARY[op](argument(0))
        if op in self.BINARY:
            return self.BINARY[op](argument(0), argument(1))
        if op == "Reshape":
            return np.reshape(argument(0), argument(1))
        if op == "Transpose":
            return np.transpose(argument(0), argument(1))
        if op == "ExpandDims":
            return np.expand_dims(argument(0), int(argument(1)))
        if op == "Squeeze":
            axes = tuple(node.attr["squeeze_dims"].list.i)
            return np.squeeze(argument(0), axis=axes or None)
        if op == "Pack":
            return np.stack([self(ref) for ref in node.inputs], axis=node.attr["axis"].i)
        if op == "ConcatV2":
            return np.concatenate([self(ref) for ref in node.inputs[:-1]], axis=int(self(node.inputs[-1])))
        if op == "Fill":
            return np.full(argument(0), argument(1))
        if op == "Shape":
            return np.asarray(argument(0).shape, dtype=np.int32)
        raise BlenderCNNError(
            self.where, f"computes a constant with the operation {node.label!r} ({op}), which the import cannot compute"
        )

    def variables_of(self, ref):
        """The variables a constant tensor is computed from."""
        found, seen, stack = [], set(), [self.graph.resolve(ref)[0]]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self.graph.variables:
                found.append(self.graph.variables[name])
            elif name in self.graph.nodes:
                stack.extend(self.graph.resolve(input_ref)[0] for input_ref in self.graph.nodes[name].inputs)
        return found
