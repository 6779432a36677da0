"""A run's epochs extracted on a Dask cluster and streamed into one bundle here (docs/scaling.md).

Each epoch is one task: a worker finds the run as the client did, loads that
epoch's checkpoint and computes its pieces with ``keras_epochs.epoch_pieces``,
the very function the serial extraction runs, so the bundle is the serial
one, array for array. The client writes each epoch as it arrives, in any
order, into the slots of its position; memory on a worker stays one
checkpoint and its outputs, and the bundle is assembled only here.

Workers read the checkpoints themselves: the run must be at the same path on
every worker (one machine, or a shared folder). A worker lost mid-epoch costs
that epoch, which Dask runs again elsewhere. Ctrl-C (or Esc in Blender)
cancels what has not started (an epoch is one step, so there is nothing to
poll between), and the bundle writer leaves nothing behind.
"""

import os
import socket
import time

from ..core.cluster import connect, stop
from ..core.errors import BlenderCNNError
from .keras_epochs import EpochWriter, KerasState, epoch_pieces, log_epoch

# Per worker process: the run found and the model its weights-only epochs share, by source.
_RUNS = {}


def write_keras_epochs_on_cluster(plan, writer, log, address, source, architecture, allow_unsafe, should_stop=None):
    """Every checkpoint of ``plan`` computed on the cluster at ``address`` and written into ``writer``; returns the
    finished bundle's path."""
    from distributed import as_completed

    checkpoints = plan.found.checkpoints
    run = (os.path.abspath(source), architecture and os.path.abspath(architecture), bool(allow_unsafe))
    preprocessing = plan.found.run.get("preprocessing")
    # Local workers inherit this environment: TensorFlow's start-up chatter would bury the progress lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with connect(address) as client:
        workers = len(client.scheduler_info().get("workers", {}))
        log(f"cluster: {address}, {workers} workers, {len(checkpoints)} epochs")
        futures = []
        try:
            if plan.samples is None:  # image files and synthetic inputs are sized to the network's input
                shape = client.submit(_input_shape, run, pure=False).result()
                plan.samples_for_input(shape, checkpoints[0].path, log)
            samples = client.scatter(plan.samples, broadcast=True)
            futures = [
                client.submit(_epoch_on_worker, run, position, samples, preprocessing, plan.importance, pure=False)
                for position in range(len(checkpoints))
            ]
            positions = {future.key: position for position, future in enumerate(futures)}
            epochs = EpochWriter(writer, len(checkpoints), plan.activations_dtype)
            keras_version = None
            for future in as_completed(futures):
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                pieces, seconds, keras_version = future.result()
                position = positions[future.key]
                epochs.write(pieces, position, checkpoints[position])
                log_epoch(log, checkpoints[position], seconds)
                future.release()
        except BaseException:
            stop(client, futures)
            raise
    return epochs.finish(plan, keras_version, log)


def _found(run):
    """The run as this worker sees it, found once per process."""
    if run not in _RUNS:
        from .sources import find_source

        source, architecture, allow_unsafe = run
        if not os.path.exists(source) and not os.path.exists(source + ".index"):
            raise BlenderCNNError(
                source,
                f"cannot be read on worker {socket.gethostname()}; every worker reads the checkpoints itself, so "
                "the run must be at the same path on every machine (a shared folder, docs/scaling.md)",
            )
        _RUNS[run] = find_source(source, architecture=architecture, allow_unsafe=allow_unsafe), KerasState()
    return _RUNS[run]


def _input_shape(run):
    import keras

    found, _state = _found(run)
    return tuple(found.checkpoints[0].load(keras).inputs[0].shape[1:])


def _epoch_on_worker(run, position, samples, preprocessing, importance):
    """One epoch's pieces, computed whole: ``(pieces, seconds, keras version)``."""
    import keras

    found, state = _found(run)
    started = time.perf_counter()
    pieces = list(epoch_pieces(keras, found.checkpoints[position], samples, preprocessing, importance, state, _silent))
    return pieces, time.perf_counter() - started, keras.__version__


def _silent(*_args):
    pass
