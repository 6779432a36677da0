"""Live training: a Keras callback that leaves, after every epoch, what Blender's Watch Run shows.

``LiveRun(run_dir, samples=...)`` goes into ``model.fit(callbacks=[...])``. When
training starts it records the network as it is (epoch 0 of a new training),
and at the end of every epoch it writes into ``run_dir``:

- the epoch's checkpoint ``epoch_NNN.keras`` (as ``ModelCheckpoint`` names it),
- ``history.json``, the metrics of every epoch so far,
- the bundle of every epoch so far, ``live/<name>.epoch_NNN.bcnn.npz``, and
  ``live.json``, which names it (``core/live.py``).

The bundle is computed here, from the model in memory, by the extractor's own
``keras_epochs.epoch_pieces``: Blender then only reads a finished bundle and
needs no TensorFlow, and each epoch is run once. Every bundle is a whole new
file: the earlier epochs are copied from the previous bundle and the new one
is added, so the folder also holds a normal run that ``python -m
blender_cnn.extract`` reads afterwards, and the last bundle equals that
extraction.

Importing this module needs no Keras; ``LiveRun`` is made a Keras callback
class when it is first asked for.
"""

import dataclasses
import functools
import math
import os
import time

import numpy as np

from ..core.bundle import BundleWriter, load_bundle
from ..core.errors import BlenderCNNError
from ..core.live import FINISHED, TRAINING, bundle_path, remove_live_files, write_status
from .bundle_writing import ExtractionPlan
from .keras_epochs import EpochWriter, KerasState, epoch_pieces
from .samples import SAMPLES_FILE, Samples, read_samples, synthetic_samples
from .sources import FULL_MODEL, EpochCheckpoint, Source
from .training import METRIC_NAMES, checkpoint_path, write_json

# What epoch_pieces is told the checkpoint is: not FULL_MODEL, which would end Keras' session after each epoch.
LIVE_KIND = "live"
BUNDLES_KEPT = 2  # the newest, and the one a watcher may be loading as it is replaced
HISTORY_NOTE = (
    "written live after every epoch; loss and accuracy are Keras' running averages over that epoch's training "
    "pass, val_* are evaluated after it; epoch 0 is before training (unknown unless the trainer evaluated it)"
)


def __getattr__(name):
    if name == "LiveRun":
        return live_run_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def live_run_class():
    """``LiveRun``: the callback below as a subclass of ``keras.callbacks.Callback`` (Keras imported now)."""
    import keras

    namespace = {"__module__": __name__, "__doc__": LiveRunCallback.__doc__}
    return type("LiveRun", (LiveRunCallback, keras.callbacks.Callback), namespace)


def live_callback(run_dir, run, first_metrics, log=print):
    """The ``LiveRun`` of a ``training.train_run`` (its ``live`` argument): the run described as run.json will."""
    return live_run_class()(run_dir, name=run["name"], run=run, first_metrics=first_metrics, log=log)


class LiveRunCallback:
    """Write each finished epoch's checkpoint, history and bundle into ``run_dir`` for Blender's Watch Run.

    ``samples``: the inputs whose activations the bundle records: ``(inputs,
    labels)`` arrays, a ``Samples``, or the path of an ``.npz`` with ``inputs``
    and ``labels``; by default ``samples.npz`` in ``run_dir``, else synthetic
    test patterns. Arrays given are saved as ``run_dir/samples.npz``, so the
    folder extracts later to the same bundle. ``class_names``: the output
    classes' names. ``name``: the network's (default: the folder's).
    ``first_metrics``: ``{metric: value}`` of the untrained network, when the
    trainer evaluated it (otherwise unknown). ``run``: a run description as
    ``run.json`` holds (``training.py``), for its preset, dataset and
    preprocessing. ``importance`` and ``activations_dtype`` are the
    extractor's options. Used as ``LiveRun(...)``, a Keras callback.

    Give each training a folder of its own: an earlier live run's status and
    bundles there are removed when training starts, but not its checkpoints.
    An error writing an epoch stops the training, at epoch 0 already for a
    mistake in the samples, before time is spent on it.
    """

    def __init__(
        self,
        run_dir,
        samples=None,
        class_names=None,
        name=None,
        importance=True,
        activations_dtype="float32",
        first_metrics=None,
        run=None,
        log=print,
    ):
        super().__init__()
        self.run_dir = os.path.abspath(os.fspath(run_dir))
        run = dict(run or {})
        if class_names is not None:
            run["class_names"] = [str(label) for label in class_names]
        self.name = name or run.get("name") or os.path.basename(os.path.normpath(self.run_dir))
        self.log = log
        self.history = {metric: [] for metric in METRIC_NAMES}
        self.epochs = []
        self.first_metrics = first_metrics or {}
        self.last_epoch = None
        self.bundles = LiveBundles(self.run_dir, self.name, samples, run, importance, activations_dtype, log)

    def on_train_begin(self, logs=None):
        if not self.epochs:
            os.makedirs(self.run_dir, exist_ok=True)
            remove_live_files(self.run_dir)
            self.bundles.save_samples()
        epochs = (getattr(self, "params", None) or {}).get("epochs")
        self.last_epoch = int(epochs) if epochs is not None else None

    def on_epoch_begin(self, epoch, logs=None):
        # The weights before the first epoch of this fit are epoch `epoch` of the run (0, unless it resumes).
        if not self.epochs:
            self._record(int(epoch), self.first_metrics)

    def on_epoch_end(self, epoch, logs=None):
        self._record(int(epoch) + 1, logs or {})

    def on_train_end(self, logs=None):
        if self.bundles.path is not None:
            write_status(self.run_dir, self.name, self.epochs, self.bundles.path, FINISHED, self.last_epoch)

    def _record(self, epoch, metrics):
        started = time.perf_counter()
        save_checkpoint(self.model, checkpoint_path(self.run_dir, epoch))
        self.epochs.append(epoch)
        for metric in METRIC_NAMES:
            value = metrics.get(metric)
            self.history[metric].append(None if value is None or math.isnan(float(value)) else float(value))
        write_json(
            os.path.join(self.run_dir, "history.json"), {"epochs": self.epochs, "note": HISTORY_NOTE, **self.history}
        )
        path = self.bundles.add_epoch(self.model, epoch, self.history_by_epoch())
        write_status(self.run_dir, self.name, self.epochs, path, TRAINING, self.last_epoch)
        self.bundles.prune()
        self.log(f"live: epoch {epoch} written ({time.perf_counter() - started:.2f} s): {path}")

    def history_by_epoch(self):
        """``{metric: {epoch: value}}``, as ``history.read_history`` gives a finished run's."""
        return {
            metric: {epoch: math.nan if value is None else value for epoch, value in zip(self.epochs, values)}
            for metric, values in self.history.items()
        }


class LiveBundles:
    """The bundles of a live run: each epoch's pieces computed from the model in memory, added to a copy of the
    previous bundle's epochs, written as a new file."""

    def __init__(self, run_dir, name, samples, run, importance, activations_dtype, log):
        self.run_dir, self.name, self.run, self.log = run_dir, name, run, log
        self.given_samples = samples
        self.samples = None
        self.importance, self.activations_dtype = bool(importance), activations_dtype
        self.state = KerasState()
        self.epochs = []
        self.written = []

    @property
    def path(self):
        return self.written[-1] if self.written else None

    @property
    def samples_path(self):
        return os.path.join(self.run_dir, SAMPLES_FILE)

    def save_samples(self):
        """Keep samples given as arrays in the run folder, where a later extraction looks for them."""
        given = self.given_samples
        if isinstance(given, tuple):
            given = Samples(*given)
        if isinstance(given, Samples):
            arrays = {"inputs": np.asarray(given.inputs, np.float32), "labels": np.asarray(given.labels, np.int32)}
            if given.source_index is not None:
                arrays["source_index"] = np.asarray(given.source_index, np.int32)
            partial = self.samples_path + ".partial.npz"
            np.savez(partial, **arrays)
            os.replace(partial, self.samples_path)
            self.given_samples = given

    def add_epoch(self, model, epoch, history):
        """Write the bundle of the epochs so far and ``epoch``'s, from ``model`` as it is now; returns its path."""
        import keras

        out_path = bundle_path(self.run_dir, self.name, epoch)
        position = len(self.epochs)
        samples = self._samples_for(model)
        writer = BundleWriter(out_path)
        try:
            epochs = EpochWriter(writer, position + 1, self.activations_dtype)
            checkpoint = EpochCheckpoint(epoch, checkpoint_path(self.run_dir, epoch), LIVE_KIND, None)
            preprocessing = self.run.get("preprocessing")
            log = self.log if position == 0 else _silent
            epochs.write(
                epoch_pieces(keras, checkpoint, samples, preprocessing, self.importance, self.state, log, model),
                position,
                checkpoint,
            )
            if position:
                copy_epochs(load_bundle(self.path), epochs, position)
            plan = self._plan(out_path, [*self.epochs, epoch], history, samples)
            epochs.finish(plan, keras.__version__, _silent)
        finally:
            writer.discard()
        self.epochs.append(epoch)
        self.written.append(out_path)
        return out_path

    def prune(self):
        """Remove all but the newest bundles; the status names the newest already."""
        for path in self.written[:-BUNDLES_KEPT]:
            if os.path.exists(path):
                os.remove(path)
        del self.written[:-BUNDLES_KEPT]

    def _samples_for(self, model):
        if self.samples is not None:
            return self.samples
        given = self.given_samples
        if isinstance(given, tuple):
            given = Samples(*given)
        if given is None and os.path.isfile(self.samples_path):
            given = self.samples_path
        if isinstance(given, (str, os.PathLike)):
            given = read_samples(given)
            run_preprocessing = self.run.get("preprocessing")
            if not given.preprocessing and run_preprocessing:  # as plan_extraction takes a run's samples file
                given = dataclasses.replace(
                    given, preprocessing=run_preprocessing, dataset=given.dataset or self.run.get("dataset")
                )
        if given is None:
            given = synthetic_samples(tuple(model.inputs[0].shape[1:]), self.run.get("preprocessing"))
        if not isinstance(given, Samples):
            raise BlenderCNNError(
                "LiveRun samples", f"must be (inputs, labels), a Samples or an .npz path, got {type(given).__name__}"
            )
        self.samples = given
        return given

    def _plan(self, out_path, epochs, history, samples):
        """The extraction plan ``finish_bundle`` reads, as ``plan_extraction`` would make it for the run folder."""
        found = Source(
            name=self.name,
            folder=self.run_dir,
            checkpoints=[
                EpochCheckpoint(epoch, checkpoint_path(self.run_dir, epoch), FULL_MODEL, None) for epoch in epochs
            ],
            history=history,
            history_path=os.path.join(self.run_dir, "history.json"),
            architecture_path=None,
            run=self.run,
            samples_path=self.samples_path if os.path.isfile(self.samples_path) else None,
        )
        options = {
            "activations_dtype": self.activations_dtype,
            "samples_per_class": None,
            "images": None,
            "importance": self.importance,
        }
        if samples.synthetic:
            options["samples"] = "synthetic"
        return ExtractionPlan(
            found, out_path, samples, None, bool(samples.synthetic), options, self.activations_dtype, self.importance,
            time.perf_counter(),
        )  # fmt: skip


def copy_epochs(previous, epochs, count):
    """Put the first ``count`` epochs of bundle ``previous`` into ``epochs`` (an ``EpochWriter`` whose newest
    epoch is written, so every array is reserved)."""
    slots = [*epochs.slots.values(), *epochs.importance_slots.values()]
    for slot in slots:
        if slot.shape[0] == 1:  # an input layer: the same at every epoch, written once by EpochWriter.finish
            continue
        stored = previous.array(slot.key)
        if stored.shape[0] != count or stored.shape[1:] != slot.shape[1:]:
            raise BlenderCNNError(previous.path, f"array {slot.key!r} does not fit the run's newest epoch")
        for position in range(count):
            slot.write(stored[position], position)
    for output in previous.outputs:
        epochs.head_predictions[output.layer][:count] = previous.array(output.predictions)


def save_checkpoint(model, path):
    """``model.save(path)`` through a temporary file, so the checkpoint is whole or absent."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".partial_{name}")  # Keras wants the .keras ending
    model.save(partial)
    os.replace(partial, path)


def _silent(*_args):
    pass
