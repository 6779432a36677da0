"""ONNX files of every epoch -> one network bundle, with onnxruntime and without TensorFlow.

Each epoch's file is read (``onnx_files``) and run by onnxruntime on the CPU
with every data tensor of its graph asked for as an output, so each
layer's activations are the runtime's own values for its node, converted once
to the bundle's channels-last layout (``onnx_graph.Layout``). The layers come
from ``onnx_layers``; on the first batch every one of them is computed again
by the add-on's numpy forward pass (what Show Image runs), and a layer whose
translation does not reproduce onnxruntime's values is kept as an outputs-only
layer, with a line in the log, rather than drawn as something it is not.

There is no gradient here, so no importance is stored: the add-on shows its
numpy estimate (activation x weight magnitude) and says so in the legend
(docs/importance.md). Memory stays bounded as for Keras: one epoch's model
and one batch of every layer's outputs at a time.
"""

import os
import time

import numpy as np

from ..core.errors import BlenderCNNError, first_line
from ..core.forward import compute_layer
from ..core.layer_specs import spec_of
from .bundle_writing import add_head_predictions, batch_size, finish_bundle, reserve_arrays
from .keras_graph import structure
from .onnx_files import initializer_arrays
from .onnx_graph import FLOAT_KINDS, data_tensor_names, declared_batch, declared_dims, graph_inputs, input_layout
from .onnx_layers import ONNX_TYPE_PREFIX, translate

# A translated layer agrees with onnxruntime when they differ by less than this, relative to its largest value.
AGREEMENT_TOLERANCE = 1e-4


class OnnxRunner:
    """One epoch's model in onnxruntime, every data tensor of its graph an output."""

    def __init__(self, model, path):
        import onnx
        import onnxruntime

        self.path = path
        inputs = graph_inputs(model)
        if len(inputs) != 1:
            names = ", ".join(value.name for value in inputs)
            raise BlenderCNNError(path, f"takes {len(inputs)} inputs ({names}); ONNX import takes networks of one")
        self.input = inputs[0]
        self.fixed_batch = declared_batch(self.input)
        # A model exported in half or double precision takes its inputs so; the bundle stays float32.
        element_type = self.input.type.tensor_type.elem_type
        self.input_dtype = onnx.helper.tensor_dtype_to_np_dtype(element_type) if element_type else np.float32
        self.tensors = data_tensor_names(model)
        exposed = onnx.ModelProto()
        exposed.CopyFrom(model)
        already = {value.name for value in exposed.graph.output}
        # Untyped outputs: onnxruntime takes each tensor's type from the node that makes it.
        exposed.graph.output.extend(onnx.ValueInfoProto(name=name) for name in self.tensors[1:] if name not in already)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Every tensor is an output, copied out after each run: the runtime's memory pool would only grow from
        # one epoch's session to the next (2.4 GB instead of 1.7 GB for three ResNet50 epochs).
        options.enable_cpu_mem_arena = False
        try:
            self.session = onnxruntime.InferenceSession(
                exposed.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's Fail/InvalidGraph/NotImplemented: it cannot run this file
            raise BlenderCNNError(
                path, f"cannot be run by onnxruntime {onnxruntime.__version__}: {_reason(error)}"
            ) from None
        self.names = [output.name for output in self.session.get_outputs()]

    def run(self, onnx_inputs):
        """``{tensor: array}`` of every float data tensor for a batch of inputs (ONNX layout)."""
        if self.fixed_batch is not None and len(onnx_inputs) != self.fixed_batch:
            return self._run_in_fixed_batches(onnx_inputs)
        try:
            values = self.session.run(None, {self.input.name: onnx_inputs.astype(self.input_dtype, copy=False)})
        except Exception as error:  # a shape or value the graph refuses, found only when it runs
            raise BlenderCNNError(self.path, f"onnxruntime failed to run it on the samples: {_reason(error)}") from None
        found = {name: value for name, value in zip(self.names, values) if np.asarray(value).dtype.kind in FLOAT_KINDS}
        found[self.input.name] = onnx_inputs
        return found

    def _run_in_fixed_batches(self, onnx_inputs):
        """A graph exported for a batch of fixed size (PyTorch's default: 1) runs that many samples at a time."""
        size = self.fixed_batch
        parts = []
        for start in range(0, len(onnx_inputs), size):
            chunk = onnx_inputs[start : start + size]
            padded = (
                np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
                if len(chunk) < size
                else chunk
            )
            parts.append((len(chunk), self.run(padded)))
        return {name: np.concatenate([values[name][:count] for count, values in parts]) for name in parts[0][1]}


def _reason(error):
    text = first_line(error)
    return text.split(" : ", 2)[-1] if text.startswith("[ONNXRuntimeError]") else text


def write_onnx_epochs(plan, writer, log):
    """Every epoch's ONNX file into ``writer`` (weights and every layer's activations), then the bundle's end."""
    import onnx
    import onnxruntime

    found, epochs = plan.found, plan.epochs
    graph, layers, slots, head_predictions, demoted, details = None, None, {}, {}, set(), {}
    for position, checkpoint in enumerate(found.checkpoints):
        epoch_started = time.perf_counter()
        layers = outputs = None  # the previous epoch's weights and activations go before this epoch's come
        model = checkpoint.load(None)
        runner = OnnxRunner(model, checkpoint.path)
        if graph is None:
            first_path = checkpoint.path
            layout_of_input, samples, onnx_inputs = _samples_for(plan, runner, log)
            first = runner.run(onnx_inputs[:1])
            shapes = {name: values.shape[1:] for name, values in first.items()}
            details = {
                "onnx_version": onnx.__version__,
                "onnxruntime_version": onnxruntime.__version__,
                "producer": " ".join(filter(None, (model.producer_name, model.producer_version))) or None,
                "opset": max(
                    (entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=None
                ),
                "input_layout": layout_of_input.kind,
            }
        layers, heads = translate(model, shapes, initializer_arrays(model), checkpoint.path)
        if graph is None:
            demoted = _check_agreement(layers, first, log)
            first = None
        _demote(layers, demoted)
        described = [layer.describe() for layer in layers]
        if graph is None:
            if not heads:
                raise BlenderCNNError(
                    checkpoint.path, "has no float output computed from its input; there is nothing to show"
                )
            graph, output_names = described, [layer.name for layer in heads]
            slots = reserve_arrays(writer, graph, len(epochs), len(samples.inputs), plan.activations_dtype)
            batch = batch_size(graph)
        elif structure(described) != structure(graph):
            raise BlenderCNNError(
                checkpoint.path,
                f"has a different layer structure than {os.path.basename(first_path)}; all checkpoints of a run "
                "must be the same network",
            )
        for layer in layers[1:]:
            for name, values in layer.weights:
                slots[f"weights/{layer.name}/{name}"].write(values, position)
        for start in range(0, len(onnx_inputs), batch):
            outputs = _bundle_outputs(layers, runner.run(onnx_inputs[start : start + batch]))
            for layer in layers[1:]:
                slots[f"activations/{layer.name}"].write(outputs[layer.name], position, first_sample=start)
            for name in output_names:
                add_head_predictions(
                    head_predictions, name, outputs[name], position, start, len(epochs), len(samples.inputs)
                )
        log(
            f"epoch {checkpoint.epoch}: {os.path.basename(checkpoint.path)} ({time.perf_counter() - epoch_started:.1f} s)"
        )
        del model, runner
    slots[f"activations/{layers[0].name}"].write(samples.inputs, 0, first_sample=0)
    # Which nodes each layer stands for and which tensor its activations are: the way back to the file.
    details["onnx_layers"] = {
        layer.name: {"nodes": list(layer.nodes), "tensor": layer.tensor, "layout": layer.layout.kind}
        for layer in layers
        if layer.tensor
    }
    if plan.importance:
        log(
            "importance: ONNX files carry no gradients here; the add-on shows its activation x weight estimate "
            "(docs/importance.md)"
        )
    return finish_bundle(
        writer, plan, graph, samples, [layers[0].name], [samples.inputs], output_names, head_predictions, details, log
    )


def _samples_for(plan, runner, log):
    """``(input layout, samples, their ONNX-layout array)``: the samples in the bundle's layout, checked against
    the graph's input."""
    dims = declared_dims(runner.input)
    layout = input_layout(dims)
    bundle_dims = layout.bundle_shape([size or 0 for size in dims]) if dims else ()
    bundle_dims = tuple(None if size == 0 else size for size in bundle_dims)
    samples = plan.samples_for_input(bundle_dims, runner.path, log)
    shape = samples.inputs.shape[1:]
    if len(shape) != len(bundle_dims) or any(size not in (None, got) for size, got in zip(bundle_dims, shape)):
        raise BlenderCNNError(
            runner.path,
            f"takes inputs of shape {bundle_dims} (channels last; {tuple(dims)} as ONNX has them), "
            f"the samples have shape {shape}",
        )
    return layout, samples, layout.to_onnx(samples.inputs)


def _bundle_outputs(layers, onnx_values):
    """``{layer name: (N, ...) bundle-layout array}`` for one batch; padding layers are computed in numpy."""
    outputs = {}
    for layer in layers:
        if layer.tensor is not None:
            outputs[layer.name] = layer.layout.to_bundle(onnx_values[layer.tensor])
        else:
            outputs[layer.name] = compute_layer(
                layer.type, layer.config, {}, [outputs[source.name] for source in layer.inputs], name=layer.name
            )
    return outputs


def _check_agreement(layers, first, log):
    """The names of layers whose numpy forward does not give onnxruntime's values for the first sample."""
    outputs = _bundle_outputs(layers, first)
    disagreeing = set()
    for layer in layers[1:]:
        spec = spec_of(layer.type)
        if layer.tensor is None or spec is None or spec.forward is None:
            continue
        expected = outputs[layer.name]
        try:
            computed = compute_layer(
                layer.type,
                layer.config,
                dict(layer.weights),
                [outputs[source.name] for source in layer.inputs],
                name=layer.name,
            )
            scale = float(np.abs(expected).max()) + 1e-6
            agrees = computed.shape == expected.shape and float(np.abs(computed - expected).max()) <= (
                AGREEMENT_TOLERANCE * scale
            )
        except BlenderCNNError:
            agrees = False
        if not agrees:
            disagreeing.add(layer.name)
    if disagreeing:
        log(
            "kept as outputs only (their translation to Keras layers does not reproduce onnxruntime's values): "
            + ", ".join(sorted(disagreeing))
        )
    return disagreeing


def _demote(layers, names):
    """Make the named layers outputs-only ``onnx.<Op>`` layers; a padding layer made for one goes with it."""
    for layer in [layer for layer in layers if layer.name in names]:
        padding = next((source for source in layer.inputs if source.owner is layer), None)
        if padding is not None:
            layer.inputs = list(padding.inputs)
            layers.remove(padding)
        layer.type = ONNX_TYPE_PREFIX + layer.ops[0]
        layer.config = {}
