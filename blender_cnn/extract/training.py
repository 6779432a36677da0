"""Train a preset and keep what the extractor needs: one checkpoint per epoch.

A run folder holds::

    epoch_000.keras ... epoch_NNN.keras   the model before training and after each epoch
    history.csv                           Keras' CSVLogger (its 'epoch' column counts from 0 = epoch_001)
    history.json                          loss/accuracy/val_loss/val_accuracy for epochs 0..N
    samples.npz                           the fixed samples: inputs, labels, source_index
    run.json                              preset, dataset, preprocessing, class names; written last

``run.json`` is written last, so its presence means the run finished; a
finished run with the same preset and epoch count is reused, not retrained.
"""

import json
import os
import re
import time

import numpy as np

from ..core.errors import BlenderCNNError
from .datasets import load_dataset, pick_samples
from .keras_models import build_model, load_preset

RUN_FORMAT = "blender_cnn.run"
RUN_VERSION = 1
CHECKPOINT_PATTERN = re.compile(r"^epoch_(\d+)\.keras$")
METRIC_NAMES = ("loss", "accuracy", "val_loss", "val_accuracy")


def checkpoint_path(run_dir, epoch):
    return os.path.join(run_dir, f"epoch_{epoch:03d}.keras")


def find_checkpoints(run_dir):
    """``[(epoch, path)]`` of the ``epoch_NNN.keras`` files in ``run_dir``, by epoch number."""
    found = []
    for entry in os.listdir(run_dir):
        match = CHECKPOINT_PATTERN.match(entry)
        if match:
            found.append((int(match.group(1)), os.path.join(run_dir, entry)))
    return sorted(found)


def train_run(preset_path, run_dir, epochs=None, log=print):
    """Train the preset at ``preset_path`` into ``run_dir``; reuse the folder if it already holds this run.

    ``epochs`` overrides the preset's ``training.epochs``. Returns the run
    description (the contents of ``run.json``).
    """
    preset = load_preset(preset_path)
    training = dict(preset["training"])
    if epochs is not None:
        if not isinstance(epochs, int) or epochs < 1:
            raise BlenderCNNError("epochs", f"must be a positive integer, got {epochs!r}")
        training["epochs"] = epochs
    preset = {**preset, "training": training}
    run_dir = os.fspath(run_dir)

    finished = _finished_run(run_dir, preset)
    if finished is not None:
        log(f"reusing {run_dir}: it already holds {training['epochs']} epochs of {preset['name']!r}")
        return finished
    os.makedirs(run_dir, exist_ok=True)
    _remove_stale_files(run_dir)

    started = time.perf_counter()
    import keras

    keras.utils.set_random_seed(int(training["seed"]))
    dataset = load_dataset(training["dataset"], preset["input_shape"],
                           training["validation_split"], training["seed"])
    if len(dataset.class_names) != len(preset["class_names"]):
        raise BlenderCNNError(preset_path, f"lists {len(preset['class_names'])} class names, but dataset "
                                           f"{dataset.name!r} has {len(dataset.class_names)} classes")
    model = build_model(preset)
    log(f"{preset['name']}: {model.count_params()} parameters, {len(dataset.x_train)} training and "
        f"{len(dataset.x_val)} validation images ({time.perf_counter() - started:.1f} s to set up)")

    chosen = pick_samples(dataset.y_val, training["samples_per_class"], len(dataset.class_names))
    np.savez(os.path.join(run_dir, "samples.npz"),
             inputs=np.ascontiguousarray(dataset.x_val[chosen], dtype=np.float32),
             labels=dataset.y_val[chosen].astype(np.int32),
             source_index=dataset.val_source_index[chosen].astype(np.int32))

    # Epoch 0 is the untrained model; its metrics are evaluated, not averaged over a pass of training.
    model.save(checkpoint_path(run_dir, 0))
    train_loss, train_accuracy = model.evaluate(dataset.x_train, dataset.y_train, verbose=0)
    val_loss, val_accuracy = model.evaluate(dataset.x_val, dataset.y_val, verbose=0)
    history = {name: [float(value)] for name, value in zip(
        METRIC_NAMES, (train_loss, train_accuracy, val_loss, val_accuracy))}
    log("epoch 0: " + _describe(history, 0))

    fit_started = time.perf_counter()
    fit_history = model.fit(
        dataset.x_train, dataset.y_train,
        validation_data=(dataset.x_val, dataset.y_val),
        epochs=training["epochs"],
        batch_size=training["batch_size"],
        shuffle=True,
        verbose=0,
        callbacks=[
            # Keras formats {epoch} 1-based, so epoch_001 is the model after the first pass.
            keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "epoch_{epoch:03d}.keras")),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv")),
            _epoch_logger(keras, log, fit_started),
        ],
    )
    for name in METRIC_NAMES:
        values = fit_history.history.get(name, [])
        history[name].extend(float(value) for value in values)
    epoch_list = list(range(training["epochs"] + 1))
    _write_json(os.path.join(run_dir, "history.json"), {
        "epochs": epoch_list,
        "note": "epoch 0 is evaluated before training; for later epochs loss and accuracy are Keras' "
                "running averages over that epoch's training pass, val_* are evaluated after it",
        **history,
    })

    missing = [epoch for epoch in epoch_list if not os.path.isfile(checkpoint_path(run_dir, epoch))]
    if missing:
        raise BlenderCNNError(run_dir, f"training finished but checkpoints of epochs {missing} are missing")
    import tensorflow as tf

    run = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "name": preset["name"],
        "preset_path": os.path.abspath(os.fspath(preset_path)),
        "preset": preset,
        "dataset": dataset.name,
        "preprocessing": dataset.preprocessing,
        "class_names": dataset.class_names,
        "epochs": epoch_list,
        "samples": {"count": int(len(chosen)), "per_class": training["samples_per_class"],
                    "chosen_from": "validation split, first images of each class in split order"},
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    _write_json(os.path.join(run_dir, "run.json"), run)
    log(f"trained {training['epochs']} epochs in {run['training_seconds']:.1f} s; "
        f"final val_accuracy {history['val_accuracy'][-1]:.3f}; wrote {run_dir}")
    return run


def read_run(run_dir):
    """The run description from ``run_dir/run.json``, or None if there is none."""
    path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            run = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BlenderCNNError(path, f"is not readable JSON ({error})") from None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise BlenderCNNError(path, f"is not a blender_cnn run description (format {RUN_FORMAT!r})")
    if not isinstance(run.get("version"), int) or run["version"] > RUN_VERSION:
        raise BlenderCNNError(path, f"is run version {run.get('version')!r}; this blender_cnn reads up to "
                                    f"version {RUN_VERSION}")
    return run


def _finished_run(run_dir, preset):
    if not os.path.isdir(run_dir):
        return None
    run = read_run(run_dir)
    if run is None:
        return None
    if run.get("preset") != preset:
        raise BlenderCNNError(run_dir, "holds a finished run of a different preset or epoch count; "
                                       "choose another run folder or delete this one")
    needed = [checkpoint_path(run_dir, epoch) for epoch in run["epochs"]]
    needed += [os.path.join(run_dir, name) for name in ("history.json", "samples.npz")]
    if not all(os.path.isfile(path) for path in needed):
        return None
    return run


def _remove_stale_files(run_dir):
    """Delete what an unfinished earlier run left, so no old checkpoint mixes into this one."""
    for entry in os.listdir(run_dir):
        if CHECKPOINT_PATTERN.match(entry) or entry in ("history.csv", "history.json", "samples.npz", "run.json"):
            os.remove(os.path.join(run_dir, entry))


def _describe(history, index):
    return ", ".join(f"{name} {history[name][index]:.4f}" for name in METRIC_NAMES if name in history)


def _write_json(path, data):
    tmp_path = path + ".partial"
    with open(tmp_path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp_path, path)


def _epoch_logger(keras, log, started):
    def on_epoch_end(epoch, logs=None):
        logs = logs or {}
        values = ", ".join(f"{name} {float(logs[name]):.4f}" for name in METRIC_NAMES if name in logs)
        log(f"epoch {epoch + 1}: {values} ({time.perf_counter() - started:.1f} s)")

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)
