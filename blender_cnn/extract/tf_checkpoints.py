"""TensorFlow-native checkpoints (``tf.train.Checkpoint`` / ``CheckpointManager``) into a Keras model.

A checkpoint stores its objects as a graph (the model, its layers, their
variables, the optimizer...) and TensorFlow restores a variable by following
that graph from the named object the model was saved as, e.g. ``model`` for
``tf.train.Checkpoint(model=model)``. Keys of the stored tensors are not
enough: a variable reachable from both the model and the optimizer is stored
once, under whichever path TensorFlow met first. So the model is restored
through TensorFlow's own matching, and variables it left untouched (filled with
NaN beforehand) are the ones that did not match.
"""

import os
import re

import numpy as np

from ..core.errors import BlenderCNNError, first_line

INDEX_SUFFIX = ".index"
DATA_PART = re.compile(r"\.data-\d+-of-\d+$")
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
# Objects every training checkpoint may hold besides the model.
BOOKKEEPING_NAMES = {"save_counter", "optimizer", "step", "epoch"}
SHOWN_NAMES = 6
SHAPE_ERROR = re.compile(
    r"tensor with shape (\(.*?\)) when attempting to restore variable with shape (\(.*?\)) "
    r"and name ([^\s:]+)"
)


def shape_mismatch(error):
    """What TensorFlow's ``error`` says when a stored variable's shape is not the network's; None for another error."""
    detail = SHAPE_ERROR.search(str(error))
    if detail is None:
        return None
    return (
        f"variable {detail.group(3)} has shape {detail.group(2)} in the network but {detail.group(1)} in the checkpoint"
    )


def checkpoint_prefix(path):
    """``ckpt-3`` for ``ckpt-3``, ``ckpt-3.index`` or ``ckpt-3.data-00000-of-00001``; None if not a checkpoint."""
    path = os.fspath(path)
    prefix = DATA_PART.sub("", path.removesuffix(INDEX_SUFFIX))
    return prefix if os.path.isfile(prefix + INDEX_SUFFIX) else None


class CheckpointRestorer:
    """Restores checkpoints into one Keras model, matching variables by the checkpoint's object graph."""

    def __init__(self, model):
        self.model = model
        self.names = variable_names(model)
        self.variables = [variable for variable in model.weights if variable.dtype.startswith("float")]

    def restore(self, prefix):
        import tensorflow as tf

        roots = self._model_names(tf, prefix)
        best = None
        for root in roots:
            missing = self._read(tf, prefix, root)
            if best is None or len(missing) < len(best[1]):
                best = (root, missing)
            if not missing:
                return self.model
        root, missing = best
        raise BlenderCNNError(
            prefix,
            f"does not fit the network: the checkpoint's {root!r} lacks the variables "
            f"{_shown(missing)}. Pass the architecture the checkpoint was trained with "
            "(--architecture)",
        )

    def _model_names(self, tf, prefix):
        """Names of the objects the checkpoint holds at its top that may be the model ("model", "net", ...)."""
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        try:
            reader = tf.train.load_checkpoint(prefix)
            graph = trackable_object_graph_pb2.TrackableObjectGraph()
            graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY))
        except Exception as error:  # TensorFlow raises OpErrors, ValueError, DecodeError for damaged files
            raise BlenderCNNError(prefix, f"cannot be read as a TensorFlow checkpoint ({first_line(error)})") from None
        names = [child.local_name for child in graph.nodes[0].children if child.local_name not in BOOKKEEPING_NAMES]
        if any(name.startswith(("layer-", "layer_with_weights-")) for name in names):  # the model is the root
            raise BlenderCNNError(
                prefix,
                "holds the weights of a tf.keras 2.x model (model.save_weights or "
                "ModelCheckpoint(save_weights_only=True)), which do not fit a Keras 3 "
                "architecture; pass that model's own architecture (its model.to_json(), "
                ".h5 or SavedModel folder) with --architecture",
            )
        if not names:
            raise BlenderCNNError(
                prefix, f"holds no model, only {', '.join(child.local_name for child in graph.nodes[0].children)}"
            )
        return names

    def _read(self, tf, prefix, root):
        """Restore the model as the checkpoint's object ``root``; return the names of variables it did not fill."""
        for variable in self.variables:
            variable.assign(np.full(variable.shape, np.nan, dtype=variable.dtype))
        try:
            tf.train.Checkpoint(**{root: self.model}).read(prefix).expect_partial()
        except (ValueError, tf.errors.OpError) as error:  # a stored variable of another shape
            raise BlenderCNNError(
                prefix, f"does not fit the network: {shape_mismatch(error) or first_line(error)}"
            ) from None
        return [
            self.names.get(id(variable), variable.path)
            for variable in self.variables
            if np.isnan(variable.numpy()).all()
        ]


def variable_names(model, prefix=""):
    """``{id(variable): "backbone/conv/kernel"}``: each variable named by its layer's place in the flat graph."""
    names = {}
    for layer in model.layers:
        inner = getattr(layer, "layers", None)
        if inner is not None and hasattr(layer, "inputs"):  # a nested model
            names.update(variable_names(layer, f"{prefix}{layer.name}/"))
        else:
            names.update({id(variable): f"{prefix}{layer.name}/{variable.name}" for variable in layer.weights})
    return names


def _shown(names):
    names = list(names)
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more
