"""Reading an ``.onnx`` file without trusting it: one clear error for a damaged or hostile file.

An ONNX file is a protobuf graph whose weights sit in initializers, in the
file or in external-data files beside it. Nothing in it is code, but it can
still lie: be truncated, loop back on itself, name external data outside its
folder (``../../etc/passwd``) or declare shapes no machine holds. Each of
those is refused here, before ``onnx.checker`` and onnxruntime see the graph,
with a message that names the file and what is wrong; the scene is never
touched because extraction runs before any scene change.
"""

import math
import os

import numpy as np

from ..core.errors import BlenderCNNError, first_line

ONNX_SUFFIX = ".onnx"
ONNX_KIND = "onnx"  # the kind of checkpoint (sources.py) an ONNX file is
# Protobuf refuses messages over 2 GB; onnx keeps bigger weights in external-data files.
PROTOBUF_LIMIT = 2**31
# A tensor (weights, or one sample's input) larger than this is not a CNN this tool can show.
MAX_TENSOR_BYTES = 8 * 2**30
MAX_INPUT_BYTES_PER_SAMPLE = 512 * 2**20
ELEMENT_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def is_onnx_file(path):
    return os.fspath(path).lower().endswith(ONNX_SUFFIX)


def read_onnx(path):
    """The model in ``path`` with its external data loaded, checked by ``onnx.checker``; ``BlenderCNNError``
    for anything that is not a sound ONNX model."""
    import onnx
    from onnx import external_data_helper

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "no such ONNX file")
    if os.path.getsize(path) == 0:
        raise BlenderCNNError(path, "is empty, not an ONNX model")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends: the bytes are not a ModelProto
        raise BlenderCNNError(path, f"is not an ONNX model, or is truncated or damaged ({first_line(error)})") from None
    if not model.graph.node:
        raise BlenderCNNError(path, "holds no ONNX graph (no nodes); is it an ONNX model?")
    _check_external_data(path, model)
    _check_initializer_sizes(path, model)
    if any(external_data_helper.uses_external_data(tensor) for tensor in model.graph.initializer):
        try:
            external_data_helper.load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
        except Exception as error:  # a file that changed under us, or one onnx refuses to read
            raise BlenderCNNError(path, f"has external data that cannot be read ({first_line(error)})") from None
    _check_inputs(path, model)
    _check_acyclic(path, model.graph)
    try:
        onnx.checker.check_model(model if model.ByteSize() < PROTOBUF_LIMIT else path)
    except Exception as error:  # ValidationError, or a protobuf error for an impossible message
        raise BlenderCNNError(path, f"is not a valid ONNX model: {first_line(error)}") from None
    return model


def _check_external_data(path, model):
    """Every external-data file must lie inside the model's folder, exist, and hold the bytes it is said to."""
    from onnx import external_data_helper

    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for tensor in model.graph.initializer:
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        target = os.path.realpath(os.path.join(folder, location))
        if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            raise BlenderCNNError(
                path,
                f"weight {tensor.name!r} points at external data {location!r} outside the model's folder; "
                "refused (external data must sit beside the .onnx file)",
            )
        if not os.path.isfile(target):
            raise BlenderCNNError(
                path, f"weight {tensor.name!r} needs the external-data file {location!r}, which is not beside it"
            )
        offset, length = int(info.get("offset", 0) or 0), info.get("length")
        needed = offset + (int(length) if length else _declared_bytes(tensor))
        if needed > os.path.getsize(target):
            raise BlenderCNNError(
                path,
                f"weight {tensor.name!r} needs {needed} bytes of {location!r}, which holds "
                f"{os.path.getsize(target)}: the external data is truncated",
            )


def _check_initializer_sizes(path, model):
    """Shapes must be non-negative and sane, and a weight stored in the file must hold what its shape says."""
    for tensor in model.graph.initializer:
        if any(size < 0 for size in tensor.dims):
            raise BlenderCNNError(path, f"weight {tensor.name!r} has the impossible shape {tuple(tensor.dims)}")
        declared = _declared_bytes(tensor)
        if declared > MAX_TENSOR_BYTES:
            raise BlenderCNNError(
                path,
                f"weight {tensor.name!r} declares the absurd shape {tuple(tensor.dims)} ({declared / 2**30:.0f} GB)",
            )
        if tensor.HasField("raw_data") and tensor.data_type in ELEMENT_BYTES and len(tensor.raw_data) != declared:
            raise BlenderCNNError(
                path,
                f"weight {tensor.name!r} of shape {tuple(tensor.dims)} should hold {declared} bytes but holds "
                f"{len(tensor.raw_data)}: the file is damaged",
            )


def _declared_bytes(tensor):
    return math.prod(tensor.dims) * ELEMENT_BYTES.get(tensor.data_type, 4)


def _check_inputs(path, model):
    initializers = {tensor.name for tensor in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]
        if any(size is not None and size < 0 for size in dims):
            raise BlenderCNNError(path, f"input {value.name!r} has the impossible shape {tuple(dims)}")
        per_sample = math.prod(size or 1 for size in dims[1:]) * 4
        if per_sample > MAX_INPUT_BYTES_PER_SAMPLE:
            raise BlenderCNNError(
                path,
                f"input {value.name!r} declares the absurd shape {tuple(dims)} "
                f"({per_sample / 2**20:.0f} MB a sample); this is not a network one can show",
            )


def _check_acyclic(path, graph):
    """A node may take only what the graph's inputs, its weights and earlier nodes give; a cycle is named."""
    producers = {output: node for node in graph.node for output in node.output if output}
    state = {}  # node index -> "visiting" | "done"
    index_of = {id(node): position for position, node in enumerate(graph.node)}
    for start in range(len(graph.node)):
        stack = [(start, iter(graph.node[start].input))]
        path_nodes = [start]
        if state.get(start) == "done":
            continue
        state[start] = "visiting"
        while stack:
            position, inputs = stack[-1]
            for name in inputs:
                producer = producers.get(name)
                if producer is None:
                    continue
                following = index_of[id(producer)]
                if state.get(following) == "visiting":
                    cycle = path_nodes[path_nodes.index(following) :]
                    names = [graph.node[i].name or graph.node[i].op_type for i in cycle]
                    raise BlenderCNNError(path, f"has a cycle in its graph: {' -> '.join(names + names[:1])}")
                if state.get(following) is None:
                    state[following] = "visiting"
                    stack.append((following, iter(producer.input)))
                    path_nodes.append(following)
                    break
            else:
                state[position] = "done"
                stack.pop()
                path_nodes.pop()


def initializer_arrays(model):
    """``{name: float32 array}`` of the model's weights (and the constants its Constant nodes hold)."""
    from onnx import numpy_helper

    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.name == "value":
                    arrays[node.output[0]] = numpy_helper.to_array(attribute.t)
                elif attribute.name in ("value_float", "value_int"):
                    arrays[node.output[0]] = np.asarray(attribute.f if attribute.name == "value_float" else attribute.i)
                elif attribute.name in ("value_floats", "value_ints"):
                    values = attribute.floats if attribute.name == "value_floats" else attribute.ints
                    arrays[node.output[0]] = np.asarray(list(values))
    return arrays
