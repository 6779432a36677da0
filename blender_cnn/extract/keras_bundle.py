"""Checkpoints of every epoch -> one network bundle (see docs/bundle-format.md).

``extract`` is the extractor's entry for every kind of source: it plans the
extraction (``bundle_writing``), hands an ONNX source to ``onnx_bundle`` and
runs Keras models here. This, training and the modules it imports are the
only TensorFlow code. Nothing in a loaded file is executed: architectures are
checked for layers that carry code before Keras reads them, and Keras' safe
mode stays on, unless the caller passes ``allow_unsafe=True`` for files they
trust.

Extraction streams: one checkpoint is in memory at a time, and each epoch's
weights and activations (batch by batch of samples) go straight into the
bundle writer's temporary files, so memory stays bounded by one model and one
batch of layer outputs however many epochs and layers there are. The same
batches give the gradients behind each layer's importance (``gradients.py``).
"""

import os
import time

from ..core.bundle import BundleWriter
from ..core.errors import BlenderCNNError
from .bundle_writing import default_bundle_path, plan_extraction
from .keras_epochs import EpochWriter, KerasState, epoch_pieces, log_epoch
from .onnx_files import ONNX_KIND

__all__ = ["default_bundle_path", "extract", "extract_run"]


def extract_run(run_dir, out_path=None, log=print):
    """Write the bundle of a run folder (as ``scripts/train.py`` leaves it); see ``extract``."""
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise BlenderCNNError(run_dir, "no such run folder; train one with scripts/train.py")
    return extract(run_dir, out_path, log=log)


def extract(
    source,
    out_path=None,
    architecture=None,
    samples=None,
    allow_unsafe=False,
    log=print,
    images=None,
    samples_per_class=None,
    activations_dtype="float32",
    importance=True,
    dask=None,
):
    """Write the bundle of the checkpoints at ``source`` (a file or a folder) and return its path.

    ``architecture``: the file the network's structure comes from when the
    checkpoints hold weights only (``.keras``, ``.h5``, ``model.to_json()``
    file or preset). ``samples``: a ``Samples`` or the path of an ``.npz`` with
    ``inputs`` and ``labels``; by default ``samples.npz`` beside the
    checkpoints, and with none of these, synthetic inputs
    (``samples.synthetic_samples``, recorded as ``samples.synthetic``).
    ``images``: PNG/JPEG files to use as the samples instead
    (unlabelled, resized and scaled as the run's preprocessing says, else to
    0..1). ``samples_per_class``: take that many samples of every class, from
    the run's dataset when run.json names one ``datasets.py`` knows, else from
    the samples file. ``activations_dtype``: ``"float16"`` halves the
    activations (bundle version 2). ``importance``: also store each layer's
    gradient x activation importance and the Dense layers' output gradients
    (bundle version 3, docs/importance.md). ``allow_unsafe``: load Lambda layers,
    which run code stored in the file. ``dask``: a cluster address (``local:N``,
    ``tcp://host:8786``) to compute the epochs on (``cluster_extraction``); the
    bundle is the same. An ``out_path`` newer than every input file and made
    with the same options is reused as it is.
    """
    plan = plan_extraction(
        source, out_path, architecture, samples, allow_unsafe, log, images, samples_per_class, activations_dtype,
        importance,
    )  # fmt: skip
    if plan is None:  # the bundle there is newer than the sources and made alike
        return os.fspath(out_path) if out_path is not None else default_bundle_path(source)
    writer = BundleWriter(plan.out_path)
    try:
        if plan.found.checkpoints[0].kind == ONNX_KIND:
            from .onnx_bundle import write_onnx_epochs

            if dask:
                log(f"cluster: not used; ONNX files are read here, onnxruntime takes seconds an epoch ({dask})")
            return write_onnx_epochs(plan, writer, log)
        if dask:
            from .cluster_extraction import write_keras_epochs_on_cluster

            return write_keras_epochs_on_cluster(plan, writer, log, dask, source, architecture, allow_unsafe)
        return _write_keras_epochs(plan, writer, log)
    finally:
        writer.discard()


def _write_keras_epochs(plan, writer, log):
    """Every checkpoint's weights and activations (and importance) into ``writer``, then the bundle's end."""
    import keras

    epochs = EpochWriter(writer, len(plan.epochs), plan.activations_dtype)
    state = KerasState()
    preprocessing = plan.found.run.get("preprocessing")
    for position, checkpoint in enumerate(plan.found.checkpoints):
        started = time.perf_counter()
        model = None
        if plan.samples is None:  # image files and synthetic inputs are sized to the network's input
            model = checkpoint.load(keras)
            plan.samples_for_input(tuple(model.inputs[0].shape[1:]), checkpoint.path, log)
        pieces = epoch_pieces(
            keras,
            checkpoint,
            plan.samples,
            preprocessing,
            plan.importance,
            state,
            log if position == 0 else _silent,
            model,
        )
        epochs.write(pieces, position, checkpoint)
        log_epoch(log, checkpoint, time.perf_counter() - started)
    return epochs.finish(plan, keras.__version__, log)


def _silent(*_args):
    pass
