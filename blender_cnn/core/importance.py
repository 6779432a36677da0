"""How much each neuron, feature-map channel and dense connection matters for each class (docs/importance.md).

Pure numpy, no bpy: the one place the scene and the edge pruning ask. A
bundle of version 3 stores gradient × activation importance computed by the
extractor with TensorFlow; for a bundle without it the same questions get a
simpler answer from what every bundle holds: activation × weight magnitude.
Either way the result has a row per class and one more, "all classes", the
mean of the class rows, so one class weighs the same however many of the
bundle's samples it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .errors import BlenderCNNError

if TYPE_CHECKING:
    from .bundle import Bundle

GRADIENT_X_ACTIVATION = "gradient_x_activation"
ACTIVATION_X_WEIGHT = "activation_x_weight"
METHOD_LABELS = {
    GRADIENT_X_ACTIVATION: "gradient × activation",
    ACTIVATION_X_WEIGHT: "activation × weight magnitude (no gradients in this bundle)",
}


def labelled_classes(labels: npt.ArrayLike, class_count: int) -> np.ndarray:
    """``(K,)`` bool: True for the classes at least one sample is labelled with."""
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=class_count)[:class_count] > 0


def class_samples(labels: npt.ArrayLike, class_count: int) -> list[np.ndarray]:
    """For each class, the indices of the samples its importance is averaged over.

    The samples labelled with the class; for a class no sample is labelled
    with (unlabelled samples, label -1, included), every sample, so the class
    still gets an answer rather than none.
    """
    labels = np.asarray(labels)
    every_sample = np.arange(len(labels))
    return [
        np.flatnonzero(labels == k) if present else every_sample
        for k, present in enumerate(labelled_classes(labels, class_count))
    ]


def importance_method(bundle: Bundle) -> str:
    """``GRADIENT_X_ACTIVATION`` when the bundle stores gradient-based importance, else ``ACTIVATION_X_WEIGHT``."""
    described = bundle.importance_info or {}
    return GRADIENT_X_ACTIVATION if described.get("method") == GRADIENT_X_ACTIVATION else ACTIVATION_X_WEIGHT


def neuron_importance(bundle: Bundle, layer_name: str, epoch_index: int) -> np.ndarray:
    """``(K+1, U)`` float32: importance of each channel (or unit) of a layer for each class, then all classes.

    The stored gradient × activation when the layer has it; otherwise the mean
    over the class's samples of the absolute activation, averaged over the
    channel's positions.
    """
    epoch = _epoch(bundle, epoch_index)
    if importance_method(bundle) == GRADIENT_X_ACTIVATION:
        stored = bundle.importance(layer_name, epoch)
        if stored is not None:
            return np.asarray(stored, dtype=np.float32)
    magnitudes = np.abs(bundle.layer_activations(layer_name, epoch))
    per_sample = magnitudes.reshape(len(magnitudes), -1, magnitudes.shape[-1]).mean(axis=1)
    # One mean per distinct set of samples: every class no sample is labelled with shares all of them, and
    # a mean per class took 0.8 s of ResNet50's build (1,000 classes, 73 layers; measured).
    means: dict[bytes, np.ndarray] = {}
    rows = []
    for samples in _class_samples(bundle):
        key = samples.tobytes()
        if key not in means:
            means[key] = per_sample[samples].mean(axis=0)
        rows.append(means[key])
    return _with_all_classes(np.stack(rows))


def edge_importance(bundle: Bundle, layer_name: str, epoch_index: int, class_index: int) -> np.ndarray:
    """``(in_units, out_units)`` float32: importance of each connection of a Dense layer for one class.

    ``class_index`` K (the number of classes) means all classes: the mean of
    the class matrices. With output gradients in the bundle it is
    ``|w_ij| * mean over the class's samples of |a_i| * |g_j|``, g the gradient
    of the class's logit with respect to the layer's pre-activation;
    otherwise ``|w_ij| * mean over the class's samples of |a_i|``.
    """
    class_count = len(bundle.class_names)
    if not 0 <= class_index <= class_count:
        raise BlenderCNNError(
            bundle.path,
            f"has {class_count} classes; class index {class_index} is neither one "
            f"of them nor {class_count} (all classes)",
        )
    inputs = np.abs(dense_input_activations(bundle, layer_name, epoch_index))
    epoch = _epoch(bundle, epoch_index)
    kernel = np.abs(np.asarray(bundle.weights(layer_name, epoch)["kernel"], dtype=np.float32))
    groups = _class_samples(bundle)
    classes = range(class_count) if class_index == class_count else [class_index]
    # Each class's samples weigh 1 / (their count * the classes averaged), so one matrix product serves them all.
    share = np.zeros((len(inputs), class_count), dtype=np.float32)
    for k in classes:
        share[groups[k], k] = 1.0 / (len(groups[k]) * len(classes))
    gradients = (
        bundle.output_gradients(layer_name, epoch) if importance_method(bundle) == GRADIENT_X_ACTIVATION else None
    )
    if gradients is None:
        return kernel * (share.sum(axis=1) @ inputs)[:, np.newaxis]
    weighted = np.einsum("sk,sku->su", share, np.abs(np.asarray(gradients, dtype=np.float32)))
    return kernel * (inputs.T @ weighted)


def dense_input_activations(bundle: Bundle, layer_name: str, epoch_index: int) -> np.ndarray:
    """``(S, in_units)`` float32: what a Dense layer fed by a one-dimensional layer takes in, for every sample."""
    layer = bundle.layer(layer_name)
    kernel = next((weight for weight in layer.weights if weight.name == "kernel"), None)
    sources = [bundle.layer(name) for name in layer.inputs]
    if layer.type != "Dense" or kernel is None or len(sources) != 1 or len(sources[0].output_shape) != 1:
        raise BlenderCNNError(
            f"layer {layer_name!r}",
            "is not a Dense layer fed by a one-dimensional layer; connection importance is defined for those only",
        )
    return bundle.layer_activations(sources[0].name, _epoch(bundle, epoch_index))


def _class_samples(bundle: Bundle) -> list[np.ndarray]:
    return class_samples(bundle.array(bundle.manifest["samples"]["labels"]), len(bundle.class_names))


def _with_all_classes(rows: np.ndarray) -> np.ndarray:
    return np.concatenate([rows, rows.mean(axis=0, keepdims=True)]).astype(np.float32)


def _epoch(bundle: Bundle, epoch_index: int) -> int:
    """The epoch number at position ``epoch_index`` of the bundle's epoch axis."""
    epochs = bundle.epochs
    if not 0 <= epoch_index < len(epochs):
        raise BlenderCNNError(bundle.path, f"has {len(epochs)} epochs; epoch index {epoch_index} does not exist")
    return epochs[epoch_index]
