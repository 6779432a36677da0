"""One Keras checkpoint's share of a bundle, as pieces, and the writer that puts pieces in place.

``epoch_pieces`` loads one epoch's checkpoint and yields what the bundle
needs of it, batch by batch: the layer graph (first), every weight, every
layer's activations, the importance rows, the Dense layers' output gradients
and each output head's probabilities. ``EpochWriter`` takes pieces, reserves
the bundle's arrays when the first graph arrives, checks that every later
epoch has the same structure and writes each piece into its slot.

The serial extraction (``keras_bundle``) writes the pieces as they come, so
memory stays one batch of outputs; a cluster's worker (``cluster_extraction``)
collects one epoch's pieces and sends them to the client. Both run this one
function, so both write the same arrays.
"""

import os
from dataclasses import dataclass, field

from ..core.errors import BlenderCNNError
from .bundle_writing import add_head_predictions, batch_size, finish_bundle, reserve_arrays
from .gradients import EpochImportance, plan_gradients, run_samples
from .keras_graph import describe_layer, flatten_model, named_weights, structure, weight_key
from .multi_io import samples_for_heads, samples_for_model
from .sources import FULL_MODEL

GRAPH, WEIGHT, ACTIVATIONS, IMPORTANCE, OUTPUT_GRADIENTS, PREDICTIONS, INPUTS = (
    "graph", "weight", "activations", "importance", "output_gradients", "predictions", "inputs"
)  # fmt: skip


@dataclass
class KerasState:
    """What consecutive epochs in one process share: weights-only epochs reuse one model and its plans."""

    model: object = None
    flat: object = None
    gradient_plan: object = None
    described: list = field(default_factory=list)
    samples: object = None
    run_inputs: object = None
    batch: int = 1
    head_positions: dict = field(default_factory=dict)


def epoch_pieces(keras, checkpoint, samples, preprocessing, importance, state, log, loaded=None):
    """Yield ``(kind, ...)`` pieces of one epoch: ``(GRAPH, described, input names, output names, samples,
    score)`` first, then ``(WEIGHT, key, array)``, ``(ACTIVATIONS, key, start, values)``,
    ``(OUTPUT_GRADIENTS, name, start, values)``, ``(PREDICTIONS, name, start, outputs)``,
    ``(IMPORTANCE, name, rows)`` and, last, ``(INPUTS, every input's array)``. ``loaded``: the checkpoint's
    model when the caller has it already."""
    loaded = loaded if loaded is not None else checkpoint.load(keras)
    if loaded is not state.model:  # weights-only epochs reuse one model; full models are new each time
        state.model = loaded
        state.samples, state.run_inputs, input_shapes = samples_for_model(
            keras, loaded, samples, checkpoint.path, preprocessing
        )
        state.flat = flatten_model(keras, loaded, input_shapes, checkpoint.path)
        state.samples = samples_for_heads(state.samples, state.flat.output_names)
        state.described = [
            describe_layer(layer, state.flat.tensors, is_input=not layer.inputs) for layer in state.flat.layers
        ]
        state.gradient_plan = (
            plan_gradients(keras, state.flat, state.described, len(state.samples.inputs), log) if importance else None
        )
        state.batch = batch_size(state.described, gradients=state.gradient_plan is not None)
        computed = [layer.name for layer in state.flat.layers[len(state.flat.input_names) :]]  # in batch.outputs
        state.head_positions = {name: computed.index(name) for name in state.flat.output_names}
    flat, plan, described = state.flat, state.gradient_plan, state.described
    score = plan.score if plan is not None else None
    yield GRAPH, described, flat.input_names, flat.output_names, state.samples, score
    for layer in flat.layers[1:]:
        for weight_name, variable in named_weights(layer.layer):
            yield WEIGHT, weight_key(layer.name, weight_name), variable.numpy()
    epoch_importance = EpochImportance(state.samples.labels, plan.class_count) if plan is not None else None
    inputs_count = len(flat.input_names)
    for start, batch in run_samples(keras, flat, plan, state.run_inputs, state.samples.labels, state.batch):
        for described_layer, values in zip(described[inputs_count:], batch.outputs):
            yield ACTIVATIONS, described_layer["activations"], start, values
        if plan is not None:
            epoch_importance.add(batch.importance)
            for name, values in batch.output_gradients.items():
                yield OUTPUT_GRADIENTS, name, start, values
        for name, index in state.head_positions.items():
            yield PREDICTIONS, name, start, batch.outputs[index]
        del batch
    if plan is not None:
        for name, rows in epoch_importance.rows().items():
            yield IMPORTANCE, name, rows
    yield INPUTS, state.run_inputs if inputs_count > 1 else [state.run_inputs]
    if checkpoint.kind == FULL_MODEL:  # the next epoch is a new model; free this one's graph
        state.model = state.flat = state.gradient_plan = None
        keras.backend.clear_session()


class EpochWriter:
    """Puts the pieces of every epoch into a ``BundleWriter``, the first graph deciding the arrays."""

    def __init__(self, writer, epoch_count, activations_dtype):
        self.writer = writer
        self.epoch_count = epoch_count
        self.activations_dtype = activations_dtype
        self.graph = None
        self.first_path = None
        self.slots = {}
        self.importance_slots = {}
        self.head_predictions = {}
        self.input_names = self.output_names = self.samples = self.score = self.every_input = None
        self.has_importance = False

    def write(self, pieces, position, checkpoint):
        """Write one epoch's pieces (an iterable, consumed as it goes) at ``position``."""
        for piece in pieces:
            kind = piece[0]
            if kind == GRAPH:
                self._take_graph(*piece[1:], checkpoint)
            elif kind == WEIGHT:
                self.slots[piece[1]].write(piece[2], position)
            elif kind == ACTIVATIONS:
                self.slots[piece[1]].write(piece[3], position, first_sample=piece[2])
            elif kind == OUTPUT_GRADIENTS:
                self._importance_slot(piece[1], OUTPUT_GRADIENTS, piece[3].shape[1:]).write(
                    piece[3], position, first_sample=piece[2]
                )
            elif kind == IMPORTANCE:
                self.has_importance = True
                self._importance_slot(piece[1], IMPORTANCE, piece[2].shape).write(piece[2], position)
            elif kind == PREDICTIONS:
                add_head_predictions(
                    self.head_predictions, piece[1], piece[3], position, piece[2], self.epoch_count, self.sample_count
                )
            elif kind == INPUTS:
                self.every_input = piece[1]

    @property
    def sample_count(self):
        return len(self.samples.inputs)

    def _take_graph(self, described, input_names, output_names, samples, score, checkpoint):
        if self.graph is None:
            self.graph, self.first_path = described, checkpoint.path
            self.input_names, self.output_names, self.samples, self.score = input_names, output_names, samples, score
            self.slots = reserve_arrays(
                self.writer, described, self.epoch_count, self.sample_count, self.activations_dtype
            )
        elif structure(described) != structure(self.graph):
            raise BlenderCNNError(
                checkpoint.path,
                f"has a different layer structure than {os.path.basename(self.first_path)}; all checkpoints of a run "
                "must be the same network",
            )

    def _importance_slot(self, name, kind, shape):
        """The slot of a layer's importance rows or output gradients, reserved (and noted in the graph) when first
        needed: which layers have them is known only once the first batch ran."""
        if (name, kind) not in self.importance_slots:
            layer = next(layer for layer in self.graph if layer["name"] == name)
            layer[kind] = f"{kind}/{name}"
            leading = (self.epoch_count,) if kind == IMPORTANCE else (self.epoch_count, self.sample_count)
            self.importance_slots[name, kind] = self.writer.reserve(layer[kind], (*leading, *shape))
        return self.importance_slots[name, kind]

    def finish(self, plan, keras_version, log):
        """The bundle's end once every epoch is written: the input layers' activations (the samples as fed, the
        same at every epoch), then the samples, metrics and manifest. Returns the bundle's path."""
        for layer, values in zip(self.graph, self.every_input):  # the input layers come first, in the model's order
            self.slots[layer["activations"]].write(values, 0, first_sample=0)
        return finish_bundle(
            self.writer,
            plan,
            self.graph,
            self.samples,
            self.input_names,
            self.every_input,
            self.output_names,
            self.head_predictions,
            {"keras_version": keras_version},
            log,
            importance_score=self.score if self.has_importance else None,
        )


def log_epoch(log, checkpoint, seconds):
    """The progress line jobs count: ``epoch N: FILE (X s)``."""
    log(f"epoch {checkpoint.epoch}: {os.path.basename(checkpoint.path)} ({seconds:.1f} s)")
