"""What an ONNX graph is made of, before its nodes become layers: data tensors, their layouts, module names.

*Data tensors* are the values that flow from the graph's input: a node's
output is one when the node takes a data tensor in one of its data slots (a
Reshape's shape and a Clip's bounds are not), and ``Shape``/``Size`` end the
flow (their output is metadata). onnxruntime is asked for every data tensor;
the float ones it returns are the candidates for layers' activations.

*Layouts.* ONNX (as PyTorch writes it) is channels first, NCHW; the bundle is
channels last, NHWC, as Keras is. Each data tensor carries the layout its
values have, and ``Layout.to_bundle`` converts onnxruntime's arrays once, in
the importer, so an ONNX model and its Keras twin give the same arrays. A
flattened feature map keeps PyTorch's CHW order (``FLAT_CHW``); converted,
it is Keras' HWC order, and the Dense layer after it has its rows permuted
to match (``onnx_layers``).

*Names.* PyTorch writes the module path of a node into its name:
``/layer1/layer1.0/conv1/Conv`` is module ``layer1.0.conv1``, and
``/layer1/layer1.0/downsample/downsample.0/Conv`` is ``layer1.0.downsample.0``
(a Sequential's child repeats its parent's scope before its index; any other
scope is appended with a dot);
torch's newer exporter writes the scopes into the node's metadata
(``pkg.torch.onnx.name_scopes``). A layer is named by its module path; where
one path holds several layers (a block's residual Add sits in
``layer1.0``, whose submodules make layers of their own) or a node has no
scope (``/Flatten``), the op type is added (``layer1.0.add``, ``flatten``);
repeated names get ``_1``, ``_2``.
"""

import ast
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..core.layer_specs import NESTED_MODEL_SEPARATOR

CHANNELS_FIRST = "channels_first"  # (N, C, H, W) in ONNX; (N, H, W, C) in the bundle
FLAT_CHW = "flat_chw"  # (N, C*H*W) in PyTorch's CHW order; (N, H*W*C) in Keras' HWC order in the bundle
PLAIN = "plain"  # the same in both
# Node types whose output is metadata about their input, not computed from its values.
METADATA_OPS = frozenset({"Shape", "Size"})
# Node types whose inputs after the first are parameters (a shape, bounds, pads, scales), not data.
FIRST_INPUT_IS_DATA = frozenset(
    {"Reshape", "Expand", "Slice", "Pad", "Resize", "Upsample", "Clip", "Tile", "Squeeze", "Unsqueeze",
     "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "Dropout", "TopK", "Split"}
)  # fmt: skip
TORCH_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
FLOAT_KINDS = "f"


@dataclass(frozen=True)
class Layout:
    kind: str = PLAIN
    chw: tuple = ()  # FLAT_CHW: the (C, H, W) it was flattened from

    def to_bundle(self, values):
        """onnxruntime's ``(N, ...)`` array of a tensor of this layout, as the bundle stores it."""
        values = np.asarray(values, dtype=np.float32)
        if self.kind == CHANNELS_FIRST:
            return np.ascontiguousarray(np.moveaxis(values, 1, -1))
        if self.kind == FLAT_CHW:
            channels, height, width = self.chw
            return np.ascontiguousarray(
                values.reshape(len(values), channels, height, width).transpose(0, 2, 3, 1).reshape(len(values), -1)
            )
        return values

    def to_onnx(self, values):
        """The bundle's ``(N, ...)`` array (samples, say) as onnxruntime takes it."""
        values = np.asarray(values, dtype=np.float32)
        if self.kind == CHANNELS_FIRST:
            return np.ascontiguousarray(np.moveaxis(values, -1, 1))
        if self.kind == FLAT_CHW:
            channels, height, width = self.chw
            return values.reshape(len(values), height, width, channels).transpose(0, 3, 1, 2).reshape(len(values), -1)
        return values

    def bundle_shape(self, onnx_shape):
        """The bundle's per-sample shape of a tensor whose per-sample ONNX shape is ``onnx_shape``."""
        shape = tuple(int(size) for size in onnx_shape)
        return shape[1:] + shape[:1] if self.kind == CHANNELS_FIRST else shape


def input_layout(dims):
    """The layout of a graph input of per-sample shape ``dims`` (sizes or None): a rank-3 image whose first axis
    is no longer than its last is channels first, as PyTorch's are; a TensorFlow export's NHWC input is not."""
    if len(dims) == 3 and dims[0] is not None and (dims[2] is None or dims[0] <= dims[2]):
        return Layout(CHANNELS_FIRST)
    return Layout(PLAIN)


def graph_inputs(model):
    """The graph's inputs that are not weights (old exporters list the initializers as inputs too)."""
    weights = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in weights]


def declared_dims(value):
    """Per-sample sizes of a graph input or output (None where the file leaves them open)."""
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]
    return dims[1:]


def declared_batch(value):
    """The batch size a graph input is fixed to, or None when it is open (PyTorch's default export fixes 1)."""
    dims = value.type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def data_tensor_names(model):
    """Every tensor computed from the graph's inputs, in the order the nodes make them (the inputs first)."""
    data = [value.name for value in graph_inputs(model)]
    flowing = set(data)
    for node in model.graph.node:
        if node.op_type in METADATA_OPS:
            continue
        slots = node.input[:1] if node.op_type in FIRST_INPUT_IS_DATA else node.input
        if any(name in flowing for name in slots if name):
            for output in node.output:
                if output and output not in flowing:
                    flowing.add(output)
                    data.append(output)
    return data


def attributes(node):
    """``{name: value}`` of a node's attributes, strings decoded."""
    from onnx import helper

    found = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = [item.decode("utf-8", "replace") if isinstance(item, bytes) else item for item in value]
        found[attribute.name] = value
    return found


def json_attributes(node):
    """A node's attributes JSON can hold (numbers, strings and lists of them), for an outputs-only layer."""
    kept = {}
    for name, value in attributes(node).items():
        if isinstance(value, (int, str)) or (isinstance(value, float) and math.isfinite(value)):
            kept[name] = value
        elif isinstance(value, list) and all(isinstance(item, (int, float, str)) for item in value):
            kept[name] = [item for item in value if not isinstance(item, float) or math.isfinite(item)]
    return kept


def user_float(value):
    """A float32 from the file as the number its author wrote: the shortest decimal that is that float32
    (``1e-05``, not ``9.999999747378752e-06``), as Keras' configs hold it."""
    return float(str(np.float32(value)))


def module_path(node):
    """The PyTorch module a node belongs to (``layer1.0.conv1``), or None when its name carries none."""
    for prop in node.metadata_props:
        if prop.key == TORCH_NAME_SCOPES:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                continue
            if isinstance(scopes, list) and scopes and isinstance(scopes[-1], str) and scopes[-1]:
                return scopes[-1]
    scopes = [scope for scope in node.name.split("/") if scope][:-1]
    path, previous = "", None
    for scope in scopes:
        if previous is not None and scope.startswith(previous + "."):  # a Sequential's child: "layer1.0"
            path += scope[len(previous) :]
        else:
            path = f"{path}.{scope}" if path else scope
        previous = scope
    return path or None


def weight_module(name):
    """``features.0`` of a PyTorch weight named ``features.0.weight``; None for names the exporter made up."""
    if name.startswith("onnx::") or "." not in name:
        return None
    return name.rsplit(".", 1)[0]


def clean_name(name):
    """A name the bundle can hold: ``/`` separates a nested model's layers there, so it becomes ``.``."""
    return name.strip("/").replace(NESTED_MODEL_SEPARATOR, ".") or "layer"


@dataclass
class NamedUnit:
    """What naming needs of one layer: its module path, op type, a fallback name and the name it gets."""

    path: str | None
    op: str
    fallback: str | None = None  # a node's own name when it carries no module path (``Conv_0``, ``conv1``)
    fixed: str | None = None  # a name decided elsewhere (the graph input's)
    scoped: bool = False  # its path is PyTorch's module path (the node's name starts with "/")
    first_scope: str | None = None  # the first "/" part of the node's name (another exporter's model name)
    name: str = field(default="", init=False)


def assign_names(units):
    """Give every unit its name by the rules in this module's docstring; names are unique.

    Exporters other than PyTorch's (tf2onnx) put the model's own name before every node's
    (``resnet50_1/conv1_conv/...``); a first scope every layer shares says nothing and is dropped.
    """
    unscoped = [unit for unit in units if unit.path and not unit.scoped]
    heads = {unit.first_scope for unit in unscoped}
    if len(unscoped) > 1 and len(heads) == 1 and all(unit.path != unit.first_scope for unit in unscoped):
        for unit in unscoped:
            unit.path = unit.path[len(unit.first_scope) + 1 :]
    counts = Counter(unit.path for unit in units if unit.path)
    prefixes = {
        ".".join(parts[:end])
        for unit in units
        if unit.path
        for parts in [unit.path.split(".")]
        for end in range(1, len(parts))
    }
    used = Counter()
    taken = {unit.fixed for unit in units if unit.fixed}
    for unit in units:
        if unit.fixed:
            unit.name = unit.fixed
            continue
        if unit.path and counts[unit.path] == 1 and unit.path not in prefixes:
            base = unit.path
        elif unit.path:
            base = f"{unit.path}.{unit.op.lower()}"
        else:
            base = unit.fallback or unit.op.lower()
        base = clean_name(base)
        name = base
        while name in taken:
            used[base] += 1
            name = f"{base}_{used[base]}"
        taken.add(name)
        unit.name = name
    return units
