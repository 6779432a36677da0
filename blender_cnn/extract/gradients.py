"""Every layer's output for the samples, and with it gradient × activation importance (docs/importance.md).

The flat graph runs eagerly, batch by batch, under two gradient tapes. One
watches every layer's output, so one backward pass from the samples' own
class logits reaches every layer (and one more pass per class that no
sample is labelled with). The other watches only the pre-activations of the
Dense layers, so the K backward passes that give every class's gradient
there run through the dense layers alone, not back through the convolutions.

The score of class k is its logit: the input of the model's final softmax
(the softmax being the output layer's activation, a Softmax layer, or an
Activation("softmax") layer; log_softmax counts too), or the model's output
itself when it ends without one. A model of several outputs is scored by its
first output alone (the bundle's ``importance`` names it; extract/multi_io.py).
Probabilities saturate: once a sample is classified with confidence, the
softmax's gradient vanishes whatever the layers below do, while the logit's
keeps saying what drives the class.

When the score is the logit, the output layer is after it, so the logit
does not depend on its output; its importance takes the logit itself as its
activation (output neuron k: |logit k| for class k, 0 for the others), as a
linear output layer followed by a Softmax layer would have. A layer whose
output is not a float tensor (indices, masks) or that the score does not
depend on through differentiable operations gets no importance.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..core.importance import class_samples, labelled_classes
from .keras_graph import run_graph

LOGIT, OUTPUT = "logit", "output"  # what the score of a class is; recorded in the manifest
SOFTMAX_ACTIVATIONS = ("softmax", "log_softmax")
# Output gradients take (samples x classes x units) floats per epoch; beyond this a Dense layer goes without
# them (its connections then fall back to activation x weight) rather than bloat the bundle.
OUTPUT_GRADIENTS_MAX_BYTES = 64 * 1024 * 1024
# Each class no sample is labelled with costs a backward pass through the whole network per batch. Beyond
# this many (unlabelled images for a 1000-class model would be 1000 passes) those classes get no pass and
# zero importance, and the manifest says so; a 10-class model with unlabelled samples stays exact.
EMPTY_CLASS_PASSES_LIMIT = 10


@dataclass(frozen=True)
class GradientPlan:
    """What to differentiate in one model: decided once from its structure."""

    score: str  # LOGIT or OUTPUT
    output_layer: str  # the flat layer whose output is the model's
    logit_source: str  # LOGIT and a Softmax-type output layer: the layer whose output is the logit
    split: frozenset  # layers run as activation(pre-activation), so the tapes see the pre-activation
    dense: tuple  # Dense layers whose output gradients are kept
    class_count: int


@dataclass
class BatchResult:
    outputs: list  # float32 numpy output of every flat layer after the input, in graph order
    importance: dict  # layer name -> (K, U) float64: sums over this batch's samples, see ``EpochImportance``
    output_gradients: dict  # Dense layer name -> (batch, K, units) float32


def plan_gradients(keras, graph, described, sample_count, log=print):
    """The ``GradientPlan`` of a flat graph, or None if gradients cannot be taken with this Keras backend."""
    if keras.backend.backend() != "tensorflow":
        log(f"no importance: gradients are taken with TensorFlow, and Keras runs on {keras.backend.backend()}")
        return None
    shapes = {layer["name"]: layer["output_shape"] for layer in described}
    by_name = {flat.name: flat for flat in graph.layers}
    output = by_name[graph.output_name]
    if len(graph.output_names or ()) > 1:
        log(
            f"importance: the model has {len(graph.output_names)} outputs ({', '.join(graph.output_names)}); "
            f"importance is computed for the first, {output.name!r}"
        )
    class_count = math.prod(shapes[output.name])
    score, logit_source, split = OUTPUT, "", set()
    if isinstance(output.layer, keras.layers.Softmax) and len(output.inputs) == 1:
        score, logit_source = LOGIT, output.inputs[0]
    elif _activation_name(output.layer) in SOFTMAX_ACTIVATIONS:
        score = LOGIT
        split.add(output.name)
    dense = []
    for flat in graph.layers[1:]:
        if (
            not isinstance(flat.layer, keras.layers.Dense)
            or len(flat.inputs) != 1
            or len(shapes[flat.inputs[0]]) != 1
            or len(shapes[flat.name]) != 1
        ):
            continue  # a Dense layer on feature maps acts per position; its connections are not one matrix
        size = 4 * sample_count * class_count * shapes[flat.name][0]
        if size > OUTPUT_GRADIENTS_MAX_BYTES:
            log(
                f"no output gradients for {flat.name!r}: {size / 1e6:.0f} MB per epoch; its connections' "
                "importance falls back to activation x weight"
            )
            continue
        dense.append(flat.name)
        split.add(flat.name)
    return GradientPlan(score, output.name, logit_source, frozenset(split), tuple(dense), class_count)


def empty_classes_computed(labels, class_count):
    """The classes no sample is labelled with that still get their backward pass (see EMPTY_CLASS_PASSES_LIMIT)."""
    empty = np.flatnonzero(~labelled_classes(labels, class_count))
    return empty if len(empty) <= EMPTY_CLASS_PASSES_LIMIT else np.zeros(0, dtype=np.int64)


def run_samples(keras, graph, plan, inputs, labels, batch_size):
    """``(first sample, BatchResult)`` per batch of ``inputs``; without a plan, outputs only.

    ``inputs``: one array, or for a graph of several inputs a list of them, as ``run_graph`` takes.
    """
    several = len(graph.model_inputs) > 1
    empty_classes = () if plan is None else empty_classes_computed(labels, plan.class_count)
    for start in range(0, len(inputs[0] if several else inputs), batch_size):
        batch = slice(start, start + batch_size)
        chosen = [values[batch] for values in inputs] if several else inputs[batch]
        if plan is None:
            outputs = run_graph(keras, graph, chosen)
            yield start, BatchResult(_as_numpy(graph, outputs), {}, {})
        else:
            yield start, _run_batch_with_gradients(keras, graph, plan, chosen, labels[batch], empty_classes)


class EpochImportance:
    """Sums one epoch's batches into ``(K+1, U)`` importance per layer: each class's mean, then their mean."""

    def __init__(self, labels, class_count):
        self._counts = np.array([len(samples) for samples in class_samples(labels, class_count)], dtype=np.float64)
        self._sums = {}

    def add(self, batch_sums):
        for name, sums in batch_sums.items():
            self._sums[name] = self._sums.get(name, 0.0) + sums

    def rows(self):
        """``{layer name: (K+1, U) float32}``."""
        result = {}
        for name, sums in self._sums.items():
            classes = sums / self._counts[:, np.newaxis]
            result[name] = np.concatenate([classes, classes.mean(axis=0, keepdims=True)]).astype(np.float32)
        return result


def _run_batch_with_gradients(keras, graph, plan, inputs, labels, empty_classes):
    import tensorflow as tf

    pre_activations = {}
    with (
        tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape,
        tf.GradientTape(persistent=True, watch_accessed_variables=False) as tail,
    ):

        def call_layer(flat, args, kwargs):
            if flat.name in plan.split:
                pre_activation = pre_activations[flat.name] = _pre_activation(keras, flat.layer, args, kwargs)
                if flat.name in plan.dense:  # before the activation runs, or the tail tape would miss it
                    tail.watch(pre_activation)
                values = flat.layer.activation(pre_activation)
            else:
                values = flat.layer(*args, **kwargs)
            _watch(tf, tape, values)
            return values

        several = len(graph.model_inputs) > 1
        x = [
            keras.ops.convert_to_tensor(values, dtype=tensor.dtype)
            for values, tensor in zip(inputs if several else [inputs], graph.model_inputs)
        ]
        for tensor in x:
            _watch(tf, tape, tensor)
        outputs = run_graph(keras, graph, x if several else x[0], call_layer)
        if plan.score == OUTPUT:
            logit = outputs[plan.output_layer]
        else:
            logit = outputs[plan.logit_source] if plan.logit_source else pre_activations[plan.output_layer]
        logits = tf.reshape(tf.cast(logit, tf.float32), (len(labels), -1))
        # A sample counts for its own class; unlabelled samples count only for the classes no sample has.
        own = tf.one_hot(labels, plan.class_count, dtype=tf.float32)  # label -1: a row of zeros
        # A batch of unlabelled samples has no own pass, unless it needs one to say which layers have gradients.
        own_score = tf.reduce_sum(logits * own) if np.any(labels >= 0) or not len(empty_classes) else None
        class_scores = tf.reduce_sum(logits, axis=0)
        scores = [class_scores[k] for k in range(plan.class_count)]

    # The output layer's activation, for importance, is the logit it holds (see the module's docstring).
    targets = {
        name: (logit if plan.score == LOGIT and name == plan.output_layer else value)
        for name, value in outputs.items()
        if value.dtype.is_floating
    }
    names = list(targets)
    importance = {}

    def products(score):
        gradients = tape.gradient(score, [targets[name] for name in names])
        return {
            name: _channel_products(tf, targets[name], gradient)
            for name, gradient in zip(names, gradients)
            if gradient is not None
        }

    if own_score is not None:
        own_rows = own.numpy().T.astype(np.float64)
        importance = {name: own_rows @ values for name, values in products(own_score).items()}
    for k in empty_classes:
        for name, values in products(scores[k]).items():
            sums = importance.setdefault(name, np.zeros((plan.class_count, values.shape[1])))
            sums[k] += values.sum(axis=0)

    output_gradients = {
        name: np.zeros((len(labels), plan.class_count, pre_activations[name].shape[-1]), np.float32)
        for name in plan.dense
    }
    for k, score in enumerate(scores if plan.dense else ()):
        for name, gradient in zip(plan.dense, tail.gradient(score, [pre_activations[name] for name in plan.dense])):
            if gradient is None:  # the score does not depend on this layer: no gradients to keep
                output_gradients.pop(name, None)
            elif name in output_gradients:
                output_gradients[name][:, k] = np.asarray(gradient, dtype=np.float32)
    return BatchResult(_as_numpy(graph, outputs), importance, output_gradients)


def _pre_activation(keras, layer, args, kwargs):
    """The output of a layer that ends with ``self.activation``, that activation left out."""
    activation = layer.activation
    layer.activation = keras.activations.linear
    try:
        return layer(*args, **kwargs)
    finally:
        layer.activation = activation


def _watch(tf, tape, values):
    if tf.is_tensor(values) and values.dtype.is_floating:
        tape.watch(values)


def _channel_products(tf, activation, gradient):
    """``(batch, channels)`` float64: |sum over each channel's positions of activation * gradient| per sample."""
    product = tf.cast(activation, tf.float32) * tf.cast(gradient, tf.float32)
    spatial = list(range(1, len(product.shape) - 1))
    if spatial:
        product = tf.reduce_sum(product, axis=spatial)
    return np.abs(product.numpy()).astype(np.float64)


def _activation_name(layer):
    return getattr(getattr(layer, "activation", None), "__name__", None)


def _as_numpy(graph, outputs):
    return [np.asarray(outputs[flat.name], dtype=np.float32) for flat in graph.layers[len(graph.model_inputs) :]]
