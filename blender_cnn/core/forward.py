"""A numpy forward pass: a bundle's weights of any epoch applied to new inputs.

``compute_layer`` computes one layer with the numpy function its type's
entry in ``core.layer_specs`` names (the functions are in
``core.numpy_layers``); ``forward`` walks a bundle's layer graph with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .errors import BlenderCNNError
from .layer_specs import computable_layer_types, spec_of
from .numpy_layers import ComputeProblem

if TYPE_CHECKING:
    from .bundle import Bundle


def forward(
    bundle: Bundle, inputs: npt.ArrayLike | Mapping[str, npt.ArrayLike] | Sequence[npt.ArrayLike], epoch: int = -1
) -> dict[str, np.ndarray]:
    """Every layer's output for ``inputs`` with the weights of ``epoch``.

    ``inputs`` is ``(S, *bundle.input_shape)``, or one sample without the
    sample axis. A network of several inputs (``bundle.inputs``) takes
    ``{input layer name: array}`` or a list of arrays in the order of
    ``bundle.inputs``, each shaped so. ``epoch`` is an epoch number of the
    bundle; negative numbers count from the last. Returns ``{layer name:
    (S, *output_shape) float32}`` in the bundle's layer order, the input
    layers included.
    """
    given = model_inputs(bundle, inputs)
    bundle.epoch_index(epoch)  # an epoch the bundle lacks fails here, before any work
    outputs: dict[str, np.ndarray] = {}
    for layer in bundle.layers:
        if not layer.inputs:
            if layer.name not in given:
                raise BlenderCNNError(f"layer {layer.name!r}", "is an input layer the bundle's 'inputs' do not list")
            values = given[layer.name]
        else:
            weights = bundle.weights(layer.name, epoch) if layer.weights else {}
            values = compute_layer(
                layer.type, layer.config, weights, [outputs[name] for name in layer.inputs], name=layer.name
            )
        if values.shape[1:] != tuple(layer.output_shape):
            raise BlenderCNNError(
                f"layer {layer.name!r}",
                f"the numpy forward pass computed outputs of shape {values.shape[1:]}, "
                f"but the bundle says {tuple(layer.output_shape)}",
            )
        outputs[layer.name] = values
    return outputs


def model_inputs(
    bundle: Bundle, inputs: npt.ArrayLike | Mapping[str, npt.ArrayLike] | Sequence[npt.ArrayLike]
) -> dict[str, np.ndarray]:
    """``{input layer name: (S, *shape) float32}`` from what ``forward`` takes, every input checked.

    One sample of each input may come without the sample axis; all inputs must hold as many samples.
    """
    expected = bundle.inputs
    names = [entry.layer for entry in expected]
    arrays: list[Any]
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - set(names))
        missing = [name for name in names if name not in inputs]
        if unknown or missing:
            raise BlenderCNNError(
                "inputs",
                f"must be one array per input layer of {bundle.name!r} "
                f"({', '.join(names)}); got {', '.join(map(str, inputs)) or 'none'}",
            )
        arrays = [inputs[name] for name in names]
    elif len(expected) > 1:
        if isinstance(inputs, np.ndarray) or not isinstance(inputs, Sequence) or len(inputs) != len(expected):
            raise BlenderCNNError(
                "inputs",
                f"the network {bundle.name!r} takes {len(expected)} inputs "
                f"({', '.join(names)}); give one array for each, as a list or by name",
            )
        arrays = list(inputs)
    else:
        arrays = [inputs]
    given: dict[str, np.ndarray] = {}
    for entry, values in zip(expected, arrays):
        values = np.asarray(values, dtype=np.float32)
        if values.shape == entry.shape:
            values = values[np.newaxis]
        if values.shape[1:] != entry.shape:
            what = "inputs" if len(expected) == 1 else f"inputs of {entry.layer!r}"
            raise BlenderCNNError(
                what,
                f"have shape {values.shape}; the network {bundle.name!r} takes "
                f"(samples, {', '.join(map(str, entry.shape))})",
            )
        given[entry.layer] = values
    counts = {len(values) for values in given.values()}
    if len(counts) > 1:
        raise BlenderCNNError(
            "inputs",
            "hold different numbers of samples: "
            + ", ".join(f"{name} {len(values)}" for name, values in given.items()),
        )
    return given


def inputs_from_flat(bundle: Bundle, flat: npt.ArrayLike) -> dict[str, np.ndarray]:
    """``{input layer name: one sample}`` from one sample of every input flattened one after the other, in the
    order of ``bundle.inputs`` (how a network keeps the custom input it shows)."""
    flat = np.asarray(flat, dtype=np.float32).ravel()
    sizes = [int(np.prod(entry.shape)) for entry in bundle.inputs]
    if len(flat) != sum(sizes):
        raise BlenderCNNError("inputs", f"hold {len(flat)} values; the network {bundle.name!r} takes {sum(sizes)}")
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return {entry.layer: part.reshape(entry.shape) for entry, part in zip(bundle.inputs, parts)}


def compute_layer(
    layer_type: str,
    config: Mapping[str, Any] | None,
    weights: Mapping[str, np.ndarray],
    inputs: Sequence[np.ndarray],
    name: str | None = None,
) -> np.ndarray:
    """One layer's output, ``(S, ...)`` float32.

    ``config`` is the layer's config as the bundle stores it, ``weights``
    ``{weight name: array}`` and ``inputs`` the list of input arrays (each
    with its sample axis first), in the order the layer takes them.
    """
    where = f"layer {name!r}" if name is not None else f"a {layer_type} layer"
    spec = spec_of(layer_type)
    if spec is None or spec.forward is None:
        raise BlenderCNNError(
            where,
            f"is a {layer_type} layer, which the numpy forward pass cannot compute; "
            f"it computes {', '.join(computable_layer_types())}",
        )
    inputs = [np.asarray(values, dtype=np.float32) for values in inputs]
    weights = {key: np.asarray(value, dtype=np.float32) for key, value in weights.items()}
    try:
        result = spec.forward(config or {}, weights, inputs)
    except ComputeProblem as problem:
        raise BlenderCNNError(where, str(problem)) from None
    except (ValueError, IndexError) as error:  # weights or config that do not fit the inputs
        raise BlenderCNNError(
            where, f"cannot be computed from its inputs {[v.shape for v in inputs]}, config and weights ({error})"
        ) from error
    return np.ascontiguousarray(result, dtype=np.float32)


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """The network's class probabilities: its output if that is already a distribution, else its softmax.

    An output of one unit (a sigmoid's probability, or a score) is kept as it is: its softmax would be 1.
    """
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if outputs.shape[1] == 1 or (np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3)):
        return outputs.astype(np.float32)
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
