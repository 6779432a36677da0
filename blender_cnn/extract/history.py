"""Training histories: loss and accuracy per epoch, from whatever file the run left.

Read as ``{metric: {epoch: value}}`` with epochs numbered like the checkpoints:
``{epoch}`` in ``ModelCheckpoint`` file names counts from 1 for the model after
the first pass, while Keras' ``CSVLogger`` writes that pass as epoch 0 and a
dumped ``history.history`` is a list starting with it; both are shifted by one.
A blender_cnn ``history.json`` names its epochs explicitly (0 = before training).
A ``.log`` file is read when it is a CSVLogger file (the TensorFlow tutorials'
``CSVLogger("training.log")``): its first line is a CSV header with ``epoch``.
"""

import csv
import json
import math
import os
import re

from ..core.errors import BlenderCNNError, first_line
from .training import METRIC_NAMES

# Keras 2 before 2.3 wrote "acc"; the rest are the names users see today.
METRIC_ALIASES = {"acc": "accuracy", "val_acc": "val_accuracy"}
HISTORY_NAME = re.compile(r"(history|log).*\.(json|csv)$", re.IGNORECASE)
CSV_LOGGER_SUFFIX = ".log"


def find_history(folder):
    """The history file in ``folder`` (``.json`` before ``.csv`` before a CSVLogger ``.log``), or None."""
    names = sorted(
        entry
        for entry in os.listdir(folder)
        if os.path.isfile(os.path.join(folder, entry))
        and (HISTORY_NAME.search(entry) or _is_csv_logger_log(os.path.join(folder, entry)))
    )
    names.sort(
        key=lambda name: (
            name.lower().endswith(CSV_LOGGER_SUFFIX),
            not name.lower().endswith(".json"),
            name.lower() != "history.json",
            name,
        )
    )
    return os.path.join(folder, names[0]) if names else None


def read_history(path):
    """``{metric: {epoch: value}}`` from a CSVLogger file or a JSON history; raise naming the file if unreadable."""
    try:
        if path.lower().endswith((".csv", CSV_LOGGER_SUFFIX)):
            history = _read_csv(path)
        else:
            with open(path, encoding="utf-8") as handle:
                history = _from_json(json.load(handle))
    except BlenderCNNError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, csv.Error) as error:
        raise BlenderCNNError(
            path,
            f"is not a readable training history ({first_line(error)}); "
            "expected Keras' CSVLogger file or history.history saved as JSON",
        ) from None
    if not any(history.values()):
        raise BlenderCNNError(path, f"is not a readable training history: it has none of {', '.join(METRIC_NAMES)}")
    return history


def _is_csv_logger_log(path):
    """True for a ``.log`` file whose first line is a CSVLogger header (``epoch,accuracy,loss,...``); other logs are
    left alone."""
    if not path.lower().endswith(CSV_LOGGER_SUFFIX):
        return False
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            header = next(csv.reader([handle.readline()]), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return "epoch" in header and any(METRIC_ALIASES.get(column, column) in METRIC_NAMES for column in header)


def _read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "epoch" not in rows[0]:
        raise ValueError("no 'epoch' column")
    history = {metric: {} for metric in METRIC_NAMES}
    for row in rows:
        epoch = int(row["epoch"]) + 1
        for column, text in row.items():
            metric = METRIC_ALIASES.get(column, column)
            if metric in history:  # CSVLogger writes "NA" for a metric an epoch lacks
                history[metric][epoch] = math.nan if text in (None, "", "NA") else float(text)
    return history


def _from_json(stored):
    if not isinstance(stored, dict):
        raise TypeError("the JSON is not an object of metric lists")
    if "epochs" in stored:  # written by scripts/train.py: epochs named, 0 = before training
        epochs = [int(epoch) for epoch in stored["epochs"]]
    else:
        lengths = {
            len(values)
            for key, values in stored.items()
            if METRIC_ALIASES.get(key, key) in METRIC_NAMES and isinstance(values, list)
        }
        epochs = list(range(1, max(lengths, default=0) + 1))
    history = {metric: {} for metric in METRIC_NAMES}
    for key, values in stored.items():
        metric = METRIC_ALIASES.get(key, key)
        if metric not in history:
            continue
        if not isinstance(values, list) or len(values) > len(epochs):
            raise ValueError(f"{key!r} is not a list of one value per epoch")
        history[metric] = {epoch: _number(value) for epoch, value in zip(epochs, values)}
    return history


def _number(value):
    return math.nan if value is None else float(value)
