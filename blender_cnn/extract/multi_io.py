"""Networks of several inputs or output heads: the samples each input takes, and each head's part of the bundle.

A model of several inputs takes one array per input layer. A samples file
gives them as ``inputs/<input layer name>`` (``Samples.named_inputs``), every
input by its name; a model of one input takes ``inputs`` as ever (or
``inputs/<its name>``). Made-up inputs for a model that came with none are
made for every input (``samples.synthetic_samples``, as many samples as the
input with the fewest has). Image files and per-class picks from a run's
dataset fill one input, so they are refused for a model of several.

Every output of the model is a head with its own predictions (its
probabilities, ``core.forward.as_probabilities``), labels and class names:
``labels/<output layer>`` and ``class_names/<output layer>`` in the samples
file; without them a head's labels are unknown (-1) and its classes "0",
"1", ... The first head's may also be given as ``labels`` and
``class_names`` (or by run.json), as for any network.

The bundle records them in its manifest's ``inputs`` and ``outputs``
(version 4, docs/bundle-format.md). The first input and the first head stay
where a bundle of one input and one output has them (``input_shape``,
``samples.inputs``, ``class_names``, ``samples.predictions``,
``samples.labels``), and a network of one input and one output is written
exactly as before, without the two fields. Importance is computed for the
first head only (``gradients.py``); the manifest's ``importance`` names it.
"""

import dataclasses

import numpy as np

from ..core.bundle import UNLABELLED
from ..core.errors import BlenderCNNError
from .keras_graph import input_layer_name
from .samples import Samples, synthetic_samples


def samples_for_model(keras, model, samples, where, preprocessing=None):
    """``(samples, inputs, shapes)`` for ``model``'s inputs.

    ``inputs`` is what ``gradients.run_samples`` takes (the one array, or a
    list of arrays in the order of ``model.inputs``) and ``shapes`` what
    ``keras_graph.flatten_model`` takes. ``samples.inputs`` becomes the first
    input's array. Refuses samples that do not give every input by name.
    """
    names = [input_layer_name(keras, tensor) for tensor in model.inputs]
    if len(names) > 1 and samples.synthetic:
        samples = _synthetic(model, names, preprocessing)
    named = samples.named_inputs or {}
    if len(names) == 1 and names[0] not in named:
        if named:
            raise BlenderCNNError(
                samples.path or "samples",
                f"give inputs {_keys('inputs', named)}, but the model's input layer is {names[0]!r}",
            )
        return samples, samples.inputs, samples.inputs.shape[1:]
    missing = [name for name in names if name not in named]
    unknown = [name for name in named if name not in names]
    if missing or unknown:
        given = f"; they give {_keys('inputs', named)}" if named else ""
        raise BlenderCNNError(
            samples.path or "samples",
            f"the model takes {len(names)} inputs "
            f"({', '.join(names)}): samples need one array per input, "
            f"{_keys('inputs', names)}{given} (image files and "
            "--samples-per-class from a dataset fill one input)",
        )
    arrays = [named[name] for name in names]
    samples = dataclasses.replace(samples, inputs=arrays[0])
    if len(arrays) == 1:
        return samples, arrays[0], arrays[0].shape[1:]
    return samples, arrays, [values.shape[1:] for values in arrays]


def samples_for_heads(samples, output_names):
    """``samples`` with the first head's own ``labels/<name>`` and ``class_names/<name>``, if given, as its
    ``labels`` and ``class_names``; refuses labels or class names of a layer that is not an output."""
    for prefix, given in (("labels", samples.head_labels), ("class_names", samples.head_class_names)):
        unknown = [name for name in given if name not in output_names]
        if unknown:
            raise BlenderCNNError(
                samples.path or "samples",
                f"give {_keys(prefix, unknown)}, but the model's outputs are {', '.join(output_names)}",
            )
    first = output_names[0]
    changes = {}
    if first in samples.head_labels:
        changes["labels"] = samples.head_labels[first]
    if first in samples.head_class_names:
        changes["class_names"] = samples.head_class_names[first]
    return dataclasses.replace(samples, **changes) if changes else samples


def add_inputs_and_outputs(writer, graph, samples, input_names, inputs, output_names, predictions, class_names):
    """The manifest's ``inputs`` and ``outputs`` of a model of several inputs or outputs, their arrays added to
    ``writer``; ``{}`` for a model of one of each, whose bundle stays as it always was.

    ``inputs``: one array per input layer, in order; ``predictions``: ``{output layer: (E, S, K)}``;
    ``class_names``: the first head's.
    """
    if len(input_names) == 1 and len(output_names) == 1:
        return {}
    shapes = {layer["name"]: layer["output_shape"] for layer in graph}
    input_entries = []
    for position, (name, values) in enumerate(zip(input_names, inputs)):
        key = "samples/inputs" if position == 0 else f"samples/inputs/{name}"
        if position:
            writer.add(key, values)
        input_entries.append({"layer": name, "shape": shapes[name], "array": key})
    output_entries = [
        {
            "layer": output_names[0],
            "class_names": list(class_names),
            "predictions": "samples/predictions",
            "labels": "samples/labels",
        }
    ]
    for name in output_names[1:]:
        values = predictions[name]
        names = samples.head_class_names.get(name) or [str(index) for index in range(values.shape[-1])]
        if len(names) != values.shape[-1]:
            raise BlenderCNNError(
                samples.path or "samples",
                f"lists {len(names)} class names for output {name!r}, which has {values.shape[-1]} classes",
            )
        labels = samples.head_labels.get(name, np.full(len(samples.labels), UNLABELLED, np.int32))
        writer.add(f"samples/predictions/{name}", values)
        writer.add(f"samples/labels/{name}", labels)
        output_entries.append(
            {
                "layer": name,
                "class_names": list(names),
                "predictions": f"samples/predictions/{name}",
                "labels": f"samples/labels/{name}",
            }
        )
    return {"inputs": input_entries, "outputs": output_entries}


def _synthetic(model, names, preprocessing):
    """Made-up samples for every input of ``model``, as many as the input with the fewest gets."""
    made = [synthetic_samples(tensor.shape[1:], preprocessing) for tensor in model.inputs]
    count = min(len(each.inputs) for each in made)
    kinds = list(dict.fromkeys(each.synthetic for each in made))
    recorded = dict(
        made[0].preprocessing,
        samples=made[0].preprocessing["samples"][:count],
        inputs={
            name: {"kind": each.synthetic, "samples": each.preprocessing["samples"][:count]}
            for name, each in zip(names, made)
        },
    )
    return Samples(
        inputs=made[0].inputs[:count],
        labels=made[0].labels[:count],
        preprocessing=recorded,
        synthetic=" and ".join(kinds),
        named_inputs={name: each.inputs[:count] for name, each in zip(names, made)},
    )


def _keys(prefix, names):
    return ", ".join(f"{prefix}/{name}" for name in names)
