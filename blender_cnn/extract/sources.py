"""What a user points us at (a file or a folder) as an ordered list of epoch checkpoints.

Recognized checkpoint files:

- ``.keras``: a Keras 3 model, architecture and weights;
- ``.h5`` / ``.hdf5`` with an architecture inside: a legacy full model (``tf.keras`` 2, ``tf_keras``);
- ``.weights.h5``, or an ``.h5`` without architecture: weights only;
- ``NAME.index`` + ``NAME.data-*``: a TensorFlow checkpoint (``tf.train.Checkpoint``, ``CheckpointManager``,
  or tf.keras 2.x ``save_weights`` / ``ModelCheckpoint(save_weights_only=True)``);
- a folder with ``saved_model.pb`` and ``keras_metadata.pb``: a tf.keras 2.x SavedModel (``model.save("dir")``);
- ``NAME.index`` + ``.data-*`` (+ ``NAME.meta``) without an object graph: a TF1 ``Saver`` checkpoint, and a
  SavedModel folder without ``keras_metadata.pb`` (Keras 3 ``export()``, a ``tf.Module``): TensorFlow graphs
  rebuilt as Keras models by ``tf_graphs.py``; the ``.meta`` graph is a TF1 checkpoint's architecture;
- ``.onnx``: an ONNX model (PyTorch's ``torch.onnx.export``, tf2onnx...), graph and weights, read by
  ``onnx_files.py`` and turned into layers by ``onnx_layers.py``, without TensorFlow.

Files Keras 2 wrote (``keras_version`` 2.x, ``keras_metadata.pb``) are read by
tf_keras and converted to Keras 3 (``keras2.py``).

Weights-only files and TensorFlow checkpoints need the architecture: passed
explicitly, or found beside them (one other model file, a ``model.to_json()``
file, a preset or a blender_cnn ``run.json``).

In a folder, files whose names differ only in one number are the epochs of
one run (``model.{epoch:02d}.keras``, ``weights.{epoch:02d}.weights.h5``,
``ckpt-{N}``); that number is the epoch. A lone file takes its epoch from
``epoch``/``ckpt`` and a number in its name, else the last epoch of the
history, else 1.
"""

import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import BlenderCNNError, first_line
from . import keras2
from .architecture import ARCHITECTURE_HINT, is_architecture_json, load_architecture, load_keras_file
from .history import find_history, read_history
from .onnx_files import ONNX_KIND, is_onnx_file, read_onnx
from .safety import check_config, read_model_config
from .samples import SAMPLES_FILE
from .tf_checkpoints import INDEX_SUFFIX, CheckpointRestorer, checkpoint_prefix
from .tf_graphs import SAVED_MODEL, TF1_CHECKPOINT, graph_loader, is_saver_checkpoint, meta_graph_of, saved_model_folder
from .training import read_run

FULL_MODEL = "model"  # architecture and weights
WEIGHTS = "weights"  # Keras weights only
TF_CHECKPOINT = "tf"  # tf.train.Checkpoint
# TF1_CHECKPOINT and SAVED_MODEL: tf_graphs.py; ONNX_KIND: onnx_files.py.
KIND_PREFERENCE = (FULL_MODEL, WEIGHTS, ONNX_KIND, TF_CHECKPOINT, TF1_CHECKPOINT, SAVED_MODEL)
NUMBER = re.compile(r"\d+")
EPOCH_IN_NAME = re.compile(r"(?:epoch|ep|ckpt|checkpoint)[_\-.]?(\d+)", re.IGNORECASE)
SOURCE_HINT = (
    "point at a .keras, .h5, .weights.h5 or .onnx file, a TensorFlow or TF1 checkpoint (.index), a SavedModel "
    "folder or a folder of them (docs/importing.md lists every format)"
)


@dataclass
class EpochCheckpoint:
    epoch: int
    path: str
    kind: str
    load: object = field(repr=False)  # load(keras) -> the Keras model with this epoch's weights (ONNX: its model)


@dataclass
class Source:
    name: str
    folder: str
    checkpoints: list  # EpochCheckpoint, by epoch
    history: dict  # {metric: {epoch: value}}, empty when the run left none
    history_path: str | None
    architecture_path: str | None
    run: dict  # run.json of scripts/train.py, or {}
    samples_path: str | None  # samples.npz beside the checkpoints, if there is one
    notes: list = field(default_factory=list)  # what was chosen, for the log

    @property
    def files(self):
        """Every file the bundle is made from, to tell whether a bundle is newer than all of them."""
        paths = [
            checkpoint.path + (INDEX_SUFFIX if checkpoint.kind in (TF_CHECKPOINT, TF1_CHECKPOINT) else "")
            for checkpoint in self.checkpoints
        ]
        paths = [os.path.join(path, keras2.SAVED_MODEL_FILE) if os.path.isdir(path) else path for path in paths]
        paths += [path for path in (self.history_path, self.architecture_path, self.samples_path) if path]
        run_json = os.path.join(self.folder, "run.json")
        return paths + ([run_json] if os.path.isfile(run_json) else [])


def find_source(source, architecture=None, allow_unsafe=False):
    """The checkpoints, history and run description at ``source`` (a file or a folder)."""
    source = os.fspath(source)
    notes = []
    if os.path.isdir(source) and not keras2.is_keras2_saved_model(source) and saved_model_folder(source) is None:
        folder = source
        candidates = _checkpoint_files(folder)
        if not candidates:
            raise BlenderCNNError(
                source,
                "holds no checkpoints or saved models; train one with scripts/train.py or " + SOURCE_HINT,
            )
        group, ignored = _pick_group(candidates)
        if ignored:
            notes.append(f"using {len(group)} {group[0][1]} checkpoints, ignoring {', '.join(sorted(ignored))}")
        name_hint = os.path.basename(os.path.normpath(folder))
    else:
        folder = os.path.dirname(os.path.abspath(source))
        prefix = checkpoint_prefix(source)
        if prefix is not None:
            group = [(prefix, _tf_checkpoint_kind(prefix))]
        elif saved_model_folder(source) is not None:
            group = [(saved_model_folder(source), SAVED_MODEL)]
        elif keras2.keras2_saved_model_folder(source) is not None:
            group = [(keras2.keras2_saved_model_folder(source), FULL_MODEL)]
        elif os.path.isfile(source):
            group = [(source, _file_kind(source))]
            if group[0][1] is None:
                raise BlenderCNNError(source, "is not a model file I can read; " + SOURCE_HINT)
        else:
            raise BlenderCNNError(source, "no such file or folder")
        # Beside the model: a SavedModel picked by its saved_model.pb has its history and samples beside its folder.
        folder = os.path.dirname(os.path.abspath(group[0][0]))
        name_hint = file_stem(os.path.basename(group[0][0]))

    run = read_run(folder) or {}
    history_path = find_history(folder)
    history = read_history(history_path) if history_path else {}
    if history_path:
        notes.append(f"history: {os.path.basename(history_path)}")

    kind = group[0][1]
    architecture_path = None
    if kind not in (FULL_MODEL, ONNX_KIND):
        architecture_path = os.fspath(architecture) if architecture else _default_architecture(folder, group, run)
        if architecture_path:
            notes.append(f"architecture: {architecture_path}")
    elif architecture:
        notes.append(f"ignoring --architecture {os.fspath(architecture)}: the checkpoints hold their own")
    if keras2.use_tf_keras(architecture_path or group[0][0]):
        notes.append("written by Keras 2 (tf.keras 2.x): read with tf_keras and converted to Keras 3")
    loader = _loaders(kind, architecture_path, allow_unsafe)
    epochs = _epoch_numbers([path for path, _ in group], history)
    checkpoints = sorted(
        (EpochCheckpoint(epoch, path, kind, _bind(loader, path)) for epoch, (path, _) in zip(epochs, group)),
        key=lambda checkpoint: checkpoint.epoch,
    )
    for earlier, later in zip(checkpoints, checkpoints[1:]):
        if earlier.epoch == later.epoch:
            raise BlenderCNNError(
                folder,
                f"{os.path.basename(earlier.path)} and {os.path.basename(later.path)} "
                f"are both epoch {earlier.epoch}; keep one",
            )
    samples_path = os.path.join(folder, SAMPLES_FILE)
    return Source(
        name=run.get("name") or name_hint,
        folder=folder,
        checkpoints=checkpoints,
        history=history,
        history_path=history_path,
        architecture_path=architecture_path,
        run=run,
        samples_path=samples_path if os.path.isfile(samples_path) else None,
        notes=notes,
    )


def _checkpoint_files(folder):
    """``[(path, kind)]`` of the checkpoint files in ``folder``; TensorFlow checkpoints by their prefix."""
    found = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.endswith(INDEX_SUFFIX) and os.path.isfile(path):
            found.append((path.removesuffix(INDEX_SUFFIX), _tf_checkpoint_kind(path.removesuffix(INDEX_SUFFIX))))
        elif os.path.isdir(path) and saved_model_folder(path) is not None:
            found.append((path, SAVED_MODEL))
        elif keras2.is_keras2_saved_model(path):
            found.append((path, FULL_MODEL))
        elif os.path.isfile(path) and not entry.endswith(".partial"):
            kind = _file_kind(path)
            if kind is not None:
                found.append((path, kind))
    return found


def _file_kind(path):
    lowered = path.lower()
    if is_onnx_file(lowered):
        return ONNX_KIND
    if lowered.endswith(".weights.h5"):
        return WEIGHTS
    if lowered.endswith(".keras"):
        return FULL_MODEL
    if lowered.endswith((".h5", ".hdf5")):
        return FULL_MODEL if read_model_config(path) is not None else WEIGHTS
    return None


def _pick_group(candidates):
    """The files of one run: the largest set of one kind whose names differ only in numbers."""
    groups = {}
    for path, kind in candidates:
        groups.setdefault((kind, NUMBER.sub("#", os.path.basename(path))), []).append((path, kind))
    best = max(groups.values(), key=lambda files: (len(files), -KIND_PREFERENCE.index(files[0][1])))
    chosen = {path for path, _ in best}
    ignored = [os.path.basename(path) for path, _ in candidates if path not in chosen]
    return best, ignored


def _epoch_numbers(paths, history):
    """The epoch of each path: the number that varies between the names, or the rule for a lone file."""
    numbers = [[int(text) for text in NUMBER.findall(os.path.basename(path))] for path in paths]
    if len(paths) > 1:
        varying = next(
            position for position in range(len(numbers[0])) if len({values[position] for values in numbers}) > 1
        )
        return [values[varying] for values in numbers]
    match = EPOCH_IN_NAME.search(os.path.basename(paths[0]))
    if match:
        return [int(match.group(1))]
    last_epochs = [max(values) for values in history.values() if values]
    return [max(last_epochs) if last_epochs else 1]


def _find_architecture(folder, group, run):
    in_group = {path for path, _ in group}
    candidates = [path for path, kind in _checkpoint_files(folder) if kind == FULL_MODEL and path not in in_group]
    candidates += [
        os.path.join(folder, entry)
        for entry in sorted(os.listdir(folder))
        if entry.lower().endswith(".json") and entry != "run.json" and is_architecture_json(os.path.join(folder, entry))
    ]
    if not candidates and run.get("preset"):
        candidates = [os.path.join(folder, "run.json")]
    if len(candidates) == 1:
        return candidates[0]
    what = os.path.basename(group[0][0])
    if not candidates:
        raise BlenderCNNError(what, "holds weights only; " + ARCHITECTURE_HINT)
    raise BlenderCNNError(
        folder,
        f"holds several architectures ({', '.join(map(os.path.basename, candidates))}); "
        "choose one with --architecture FILE",
    )


def _tf_checkpoint_kind(prefix):
    return TF1_CHECKPOINT if is_saver_checkpoint(prefix) else TF_CHECKPOINT


def _default_architecture(folder, group, run):
    """The architecture a kind of checkpoint has without --architecture: a TF1 checkpoint's ``.meta`` graph, none
    for a SavedModel (its graph is the network), else one found beside the files."""
    if group[0][1] == SAVED_MODEL:
        return None
    if group[0][1] == TF1_CHECKPOINT:
        meta = meta_graph_of([path for path, _ in group])
        if meta is not None:
            return meta
    return _find_architecture(folder, group, run)


def _loaders(kind, architecture_path, allow_unsafe):
    if kind == ONNX_KIND:  # no Keras: the ONNX graph is the network
        return lambda _keras, path: read_onnx(path)
    if kind in (TF1_CHECKPOINT, SAVED_MODEL):  # TensorFlow graphs without Keras layers (tf_graphs.py)
        return graph_loader(kind, architecture_path, allow_unsafe)
    if kind == FULL_MODEL:

        def load_full(keras, path):
            if keras2.use_tf_keras(path):
                return keras2.load_full_model(keras, path, allow_unsafe)
            config = read_model_config(path)
            if config is None:
                raise BlenderCNNError(path, "holds weights only, not a model")
            check_config(config, path, allow_unsafe)
            return load_keras_file(keras, path, allow_unsafe)

        return load_full

    if keras2.use_tf_keras(architecture_path):  # Keras 2 weights go into the Keras 2 model they were saved from
        return keras2.weights_loader(architecture_path, allow_unsafe)

    # Weights of every epoch go into one model built once from the architecture.
    built = {}

    def model_for(keras):
        if "model" not in built:
            built["model"] = load_architecture(keras, architecture_path, allow_unsafe)
        return built["model"]

    if kind == WEIGHTS:

        def load_weights(keras, path):
            model = model_for(keras)
            fit_hint = f"does not fit the architecture {os.path.basename(architecture_path)}"
            # Keras only warns about variables a file lacks; NaN shows which ones it left untouched.
            for variable in model.weights:
                if variable.dtype.startswith("float"):
                    variable.assign(np.full(variable.shape, np.nan, dtype=variable.dtype))
            try:
                model.load_weights(path)
            except Exception as error:  # Keras names the layer that does not fit; pass that on
                raise BlenderCNNError(path, f"{fit_hint}: {_weights_error(error)}") from None
            untouched = [
                variable.path
                for variable in model.weights
                if variable.dtype.startswith("float") and np.isnan(variable.numpy()).all()
            ]
            if untouched:
                raise BlenderCNNError(path, f"{fit_hint}: it lacks the variables {', '.join(untouched)}")
            return model

        return load_weights

    def load_tf_checkpoint(keras, prefix):
        if "restorer" not in built:
            built["restorer"] = CheckpointRestorer(model_for(keras))
        return built["restorer"].restore(prefix)

    return load_tf_checkpoint


def _weights_error(error):
    """Keras' first line plus the variable and shapes it buries further down."""
    text = str(error)
    detail = re.search(
        r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\)).*?path=([^,\s]+)", text, re.DOTALL
    )
    if detail:
        expected, stored, variable = detail.groups()
        return f"variable {variable} has shape {expected} in the network but {stored} in the file"
    return first_line(error)


def _bind(loader, path):
    return lambda keras: loader(keras, path)


def file_stem(name):
    for suffix in (".weights.h5", ".keras", ".hdf5", ".h5", ".onnx"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
