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


def forward(bundle: Bundle, inputs: npt.ArrayLike, epoch: int = -1) -> dict[str, np.ndarray]:
    """Every layer's output for ``inputs`` with the weights of ``epoch``.

    ``inputs`` is ``(S, *bundle.input_shape)``, or one sample without the
    sample axis. ``epoch`` is an epoch number of the bundle; negative numbers
    count from the last. Returns ``{layer name: (S, *output_shape) float32}``
    in the bundle's layer order, the input layer included.
    """
    input_shape = tuple(bundle.input_shape)
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.shape == input_shape:
        inputs = inputs[np.newaxis]
    if inputs.shape[1:] != input_shape:
        raise BlenderCNNError("inputs", f"have shape {inputs.shape}; the network {bundle.name!r} takes "
                                        f"(samples, {', '.join(map(str, input_shape))})")
    bundle.epoch_index(epoch)  # an epoch the bundle lacks fails here, before any work
    outputs: dict[str, np.ndarray] = {}
    for layer in bundle.layers:
        if not layer.inputs:
            if outputs:
                raise BlenderCNNError(f"layer {layer.name!r}", "is a second input layer; the numpy forward pass "
                                                               "computes networks with one input only")
            values = inputs
        else:
            weights = bundle.weights(layer.name, epoch) if layer.weights else {}
            values = compute_layer(layer.type, layer.config, weights, [outputs[name] for name in layer.inputs],
                                   name=layer.name)
        if values.shape[1:] != tuple(layer.output_shape):
            raise BlenderCNNError(f"layer {layer.name!r}",
                                  f"the numpy forward pass computed outputs of shape {values.shape[1:]}, "
                                  f"but the bundle says {tuple(layer.output_shape)}")
        outputs[layer.name] = values
    return outputs


def compute_layer(layer_type: str, config: Mapping[str, Any] | None, weights: Mapping[str, np.ndarray],
                  inputs: Sequence[np.ndarray], name: str | None = None) -> np.ndarray:
    """One layer's output, ``(S, ...)`` float32.

    ``config`` is the layer's config as the bundle stores it, ``weights``
    ``{weight name: array}`` and ``inputs`` the list of input arrays (each
    with its sample axis first), in the order the layer takes them.
    """
    where = f"layer {name!r}" if name is not None else f"a {layer_type} layer"
    spec = spec_of(layer_type)
    if spec is None or spec.forward is None:
        raise BlenderCNNError(where, f"is a {layer_type} layer, which the numpy forward pass cannot compute; "
                                     f"it computes {', '.join(computable_layer_types())}")
    inputs = [np.asarray(values, dtype=np.float32) for values in inputs]
    weights = {key: np.asarray(value, dtype=np.float32) for key, value in weights.items()}
    try:
        result = spec.forward(config or {}, weights, inputs)
    except ComputeProblem as problem:
        raise BlenderCNNError(where, str(problem)) from None
    except (ValueError, IndexError) as error:  # weights or config that do not fit the inputs
        raise BlenderCNNError(where, f"cannot be computed from its inputs {[v.shape for v in inputs]}, "
                                     f"config and weights ({error})") from error
    return np.ascontiguousarray(result, dtype=np.float32)


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """The network's class probabilities: its output if that is already a distribution, else its softmax."""
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return outputs.astype(np.float32)
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
