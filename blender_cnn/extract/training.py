"""Train a preset, a design or a Keras model file and keep what the extractor needs: one checkpoint per epoch.

``train_run`` trains a preset or design (``keras_models.load_network``),
``train_model`` a ``.keras`` file; either on the dataset the preset names or
on a folder of images with one subfolder per class (``datasets``).

A run folder holds::

    epoch_000.keras ... epoch_NNN.keras   the model before training and after each epoch
    history.csv                           Keras' CSVLogger (its 'epoch' column counts from 0 = epoch_001)
    history.json                          loss/accuracy/val_loss/val_accuracy for epochs 0..N
    samples.npz                           the fixed samples: inputs, labels, source_index
    run.json                              preset, dataset, preprocessing, class names; written last
    live.json, live/                      with ``live``: the status and bundles Watch Run reads (``live.py``)

``run.json`` is written last, so its presence means the run finished; a
finished run with the same preset and epoch count is reused, not retrained.
"""

import json
import os
import re
import time

import numpy as np

from ..core.design import random_weights
from ..core.errors import BlenderCNNError
from ..core.live import remove_live_files
from ..core.presets import FOLDER_KEY, TRAINING_DEFAULTS
from .datasets import dataset_class_names, load_dataset, pick_samples, resolve_dataset
from .keras_models import build_model, load_network

RUN_FORMAT = "blender_cnn.run"
RUN_VERSION = 1
CHECKPOINT_PATTERN = re.compile(r"^epoch_(\d+)\.keras$")
METRIC_NAMES = ("loss", "accuracy", "val_loss", "val_accuracy")


def checkpoint_path(run_dir, epoch):
    return os.path.join(run_dir, f"epoch_{epoch:03d}.keras")


def train_run(preset_path, run_dir, epochs=None, log=print, images=None, design_seed=None, live=None):
    """Train a preset or design into ``run_dir``; reuse the folder if it already holds this run.

    ``preset_path`` is a preset or design: the path of its JSON file or a
    dict (``keras_models.load_network``). ``epochs`` overrides the preset's
    ``training.epochs``; ``images`` (a folder with one subfolder of images per
    class) its ``training.dataset``. ``design_seed`` starts from the design's
    random weights of that seed (``core.design.random_weights``), so epoch 0
    is the network the designer's Build Scene shows, instead of Keras' own
    initial weights. ``live``: ``live.live_callback``, or a function like it
    that makes the callback saving each epoch instead of ``ModelCheckpoint``; a
    live training trains even when the folder holds this run finished. Returns
    the run description (the contents of ``run.json``).
    """
    preset = load_network(preset_path, dataset=_folder_spec(images))
    preset = {**preset, "training": with_epochs(preset["training"], epochs)}
    where = os.fspath(preset_path) if isinstance(preset_path, (str, os.PathLike)) else f"design {preset['name']!r}"

    def make_model(dataset):
        if len(dataset.class_names) != len(preset["class_names"]):
            raise BlenderCNNError(
                where,
                f"lists {len(preset['class_names'])} class names, but dataset "
                f"{dataset.name!r} has {len(dataset.class_names)} classes "
                f"({_names(dataset.class_names)})",
            )
        model = build_model(preset)
        if design_seed is not None:
            from .export import set_design_weights

            set_design_weights(model, random_weights(preset, design_seed), where)
        return model

    source_path = os.path.abspath(where) if isinstance(preset_path, (str, os.PathLike)) else None
    return _train(preset, run_dir, make_model, source_path, log, design_seed, live)


def train_model(model_path, run_dir, epochs=None, log=print, images=None, training=None, live=None):
    """Train the Keras model file ``model_path`` (loaded in safe mode) into ``run_dir``, as ``train_run`` does.

    The dataset is the image folder ``images`` or else digits, sized to the
    model's input. The model is compiled again: Adam, sparse categorical
    cross-entropy (from logits when its outputs are not probabilities),
    accuracy. ``training`` overrides ``core.presets.TRAINING_DEFAULTS``
    (``epochs`` defaults to 8 there). ``live``: as ``train_run`` takes it.
    """
    model_path = os.fspath(model_path)
    if not os.path.isfile(model_path):
        raise BlenderCNNError(model_path, "no such Keras model file")
    if not model_path.lower().endswith(".keras"):
        raise BlenderCNNError(model_path, "is not a .keras file (Keras 3's native format)")
    settings = {**TRAINING_DEFAULTS, **(training or {})}
    if images is not None:
        settings["dataset"] = _folder_spec(images)
    settings["dataset"] = resolve_dataset(settings["dataset"])
    settings = with_epochs(settings, epochs)
    import keras

    from .architecture import load_keras_file
    from .safety import check_config, read_model_config

    check_config(read_model_config(model_path), model_path, False)
    model = load_keras_file(keras, model_path, False)
    input_shape = [int(size) for size in model.input_shape[1:]] if not isinstance(model.input_shape, list) else []
    if len(input_shape) != 3 or input_shape[2] not in (1, 3):
        raise BlenderCNNError(
            model_path,
            f"takes input {model.input_shape}; training here needs one image input (height, width, 1 or 3 channels)",
        )
    status = os.stat(model_path)
    preset = {
        "name": os.path.splitext(os.path.basename(model_path))[0],
        "description": f"the Keras model {os.path.basename(model_path)}, trained",
        "input_shape": input_shape,
        "class_names": dataset_class_names(settings["dataset"]),
        "model": {"path": os.path.abspath(model_path), "size": status.st_size, "modified": status.st_mtime_ns},
        "training": settings,
    }

    def make_model(dataset):
        outputs = tuple(model.output.shape[1:]) if not isinstance(model.output, list) else None
        if outputs != (len(dataset.class_names),):
            raise BlenderCNNError(
                model_path,
                f"outputs shape {outputs}, but dataset {dataset.name!r} has "
                f"{len(dataset.class_names)} classes ({_names(dataset.class_names)})",
            )
        probe = np.asarray(model(dataset.x_train[:16], training=False), dtype=np.float64)
        probabilities = bool(np.all(probe >= 0) and np.allclose(probe.sum(axis=1), 1.0, atol=1e-3))
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=float(settings["learning_rate"])),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities),
            metrics=["accuracy"],
        )
        return model

    return _train(preset, run_dir, make_model, os.path.abspath(model_path), log, live=live)


def _folder_spec(images):
    return None if images is None else {FOLDER_KEY: os.fspath(images)}


def with_epochs(training, epochs):
    """A copy of the ``training`` section with ``epochs`` (a positive integer) when it is given."""
    training = dict(training)
    if epochs is not None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise BlenderCNNError("epochs", f"must be a positive integer, got {epochs!r}")
        training["epochs"] = epochs
    return training


def _names(class_names, limit=12):
    shown = ", ".join(str(name) for name in class_names[:limit])
    return shown + (", ..." if len(class_names) > limit else "")


def _train(preset, run_dir, make_model, source_path, log, design_seed=None, live=None):
    """Train ``make_model(dataset)`` as ``preset["training"]`` says and write the run folder (module docstring)."""
    training = preset["training"]
    run_dir = os.fspath(run_dir)
    finished = _finished_run(run_dir, preset, design_seed)
    if finished is not None and live is None:
        log(f"reusing {run_dir}: it already holds {training['epochs']} epochs of {preset['name']!r}")
        return finished
    if finished is not None:  # a live training is watched as it goes: a finished one has nothing to show
        log(f"training {run_dir} again, live: it holds this run finished")
    os.makedirs(run_dir, exist_ok=True)
    _remove_stale_files(run_dir)

    started = time.perf_counter()
    import keras

    keras.utils.set_random_seed(int(training["seed"]))
    dataset = load_dataset(training["dataset"], preset["input_shape"], training["validation_split"], training["seed"])
    model = make_model(dataset)
    log(
        f"{preset['name']}: {model.count_params()} parameters, {len(dataset.x_train)} training and "
        f"{len(dataset.x_val)} validation images of {dataset.name} "
        f"({time.perf_counter() - started:.1f} s to set up)"
    )

    chosen = pick_samples(dataset.y_val, training["samples_per_class"], len(dataset.class_names))
    np.savez(
        os.path.join(run_dir, "samples.npz"),
        inputs=np.ascontiguousarray(dataset.x_val[chosen], dtype=np.float32),
        labels=dataset.y_val[chosen].astype(np.int32),
        source_index=dataset.val_source_index[chosen].astype(np.int32),
    )

    # Epoch 0 is the untrained model; its metrics are evaluated, not averaged over a pass of training.
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # so loading epoch_000 does not warn of missing variables
    model.save(checkpoint_path(run_dir, 0))
    train_loss, train_accuracy = model.evaluate(dataset.x_train, dataset.y_train, verbose=0)
    val_loss, val_accuracy = model.evaluate(dataset.x_val, dataset.y_val, verbose=0)
    history = {
        name: [float(value)] for name, value in zip(METRIC_NAMES, (train_loss, train_accuracy, val_loss, val_accuracy))
    }
    log("epoch 0: " + _describe(history, 0))

    if live is not None:
        # What run.json will say, for the manifests of the bundles written before it is.
        described = {
            "name": preset["name"],
            "preset": preset,
            "dataset": dataset.name,
            "preprocessing": dataset.preprocessing,
            "class_names": dataset.class_names,
        }
        first_metrics = {name: values[0] for name, values in history.items()}
        saving = live(run_dir, described, first_metrics, log)
    else:
        # Keras formats {epoch} 1-based, so epoch_001 is the model after the first pass.
        saving = keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "epoch_{epoch:03d}.keras"))
    fit_started = time.perf_counter()
    fit_history = model.fit(
        dataset.x_train,
        dataset.y_train,
        validation_data=(dataset.x_val, dataset.y_val),
        epochs=training["epochs"],
        batch_size=training["batch_size"],
        shuffle=True,
        verbose=0,
        callbacks=[
            saving,
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv")),
            _epoch_logger(keras, log, fit_started),
        ],
    )
    for name in METRIC_NAMES:
        values = fit_history.history.get(name, [])
        history[name].extend(float(value) for value in values)
    epoch_list = list(range(training["epochs"] + 1))
    write_json(
        os.path.join(run_dir, "history.json"),
        {
            "epochs": epoch_list,
            "note": "epoch 0 is evaluated before training; for later epochs loss and accuracy are Keras' "
            "running averages over that epoch's training pass, val_* are evaluated after it",
            **history,
        },
    )

    missing = [epoch for epoch in epoch_list if not os.path.isfile(checkpoint_path(run_dir, epoch))]
    if missing:
        raise BlenderCNNError(run_dir, f"training finished but checkpoints of epochs {missing} are missing")
    import tensorflow as tf

    run = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "name": preset["name"],
        "preset_path": source_path,
        "preset": preset,
        "design_seed": design_seed,
        "dataset": dataset.name,
        "preprocessing": dataset.preprocessing,
        "class_names": dataset.class_names,
        "epochs": epoch_list,
        "samples": {
            "count": int(len(chosen)),
            "per_class": training["samples_per_class"],
            "chosen_from": "validation split, first images of each class in split order",
        },
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    write_json(os.path.join(run_dir, "run.json"), run)
    log(
        f"trained {training['epochs']} epochs in {run['training_seconds']:.1f} s; "
        f"final val_accuracy {history['val_accuracy'][-1]:.3f}; wrote {run_dir}"
    )
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
        raise BlenderCNNError(
            path, f"is run version {run.get('version')!r}; this blender_cnn reads up to version {RUN_VERSION}"
        )
    return run


def _finished_run(run_dir, preset, design_seed=None):
    if not os.path.isdir(run_dir):
        return None
    run = read_run(run_dir)
    if run is None:
        return None
    if run.get("preset") != preset or run.get("design_seed") != design_seed:
        raise BlenderCNNError(
            run_dir,
            "holds a finished run of a different preset, epoch count or initial "
            "weights; choose another run folder or delete this one",
        )
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
    remove_live_files(run_dir)


def _describe(history, index):
    return ", ".join(f"{name} {history[name][index]:.4f}" for name in METRIC_NAMES if name in history)


def write_json(path, data):
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
