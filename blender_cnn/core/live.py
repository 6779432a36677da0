"""The status file of a live run: what a training (``extract.live.LiveRun``) writes after every epoch and
Watch Run (``scene.live``) polls.

A live run folder holds, beside the checkpoints and history of a run::

    live.json                              this status: the epochs so far, the newest bundle, the state
    live/<name>.epoch_NNN.bcnn.npz         the bundle of epochs 0..NNN, never changed once written

Each bundle is written whole under a new name and the status names it only
after it is in place, and the status itself is written to a temporary file and
renamed: a reader never sees half of either. A bundle is never rewritten in
place because a reader that has opened one reads its arrays later, from the
same file; a writer keeps the two newest, so the one a watcher is loading is
still there.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BlenderCNNError

STATUS_FILE = "live.json"
BUNDLE_FOLDER = "live"
STATUS_FORMAT = "blender_cnn.live"
STATUS_VERSION = 1
TRAINING, FINISHED = "training", "finished"
STATES = (TRAINING, FINISHED)


@dataclass(frozen=True)
class LiveStatus:
    """One reading of a run's ``live.json``."""

    run_dir: str
    name: str
    epochs: tuple[int, ...]  # the epochs the newest bundle holds
    bundle: str  # its absolute path
    state: str  # TRAINING or FINISHED
    last_epoch: int | None  # the epoch the training ends at, when it said so

    @property
    def newest(self) -> int:
        return self.epochs[-1]

    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    def describe(self) -> str:
        """``epoch 3 of 8``, ``epoch 3`` or ``epoch 8, finished``, for the panel and reports."""
        if self.finished:
            return f"epoch {self.newest}, finished"
        return f"epoch {self.newest}" + (f" of {self.last_epoch}" if self.last_epoch is not None else "")


def status_path(run_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(run_dir), STATUS_FILE)


def bundle_path(run_dir: str | os.PathLike[str], name: str, epoch: int) -> str:
    """Where the bundle of the epochs up to ``epoch`` goes."""
    return os.path.join(os.fspath(run_dir), BUNDLE_FOLDER, f"{name}.epoch_{epoch:03d}.bcnn.npz")


def read_status(run_dir: str | os.PathLike[str]) -> LiveStatus | None:
    """The run's live status, or None while the training has written none yet."""
    path = status_path(run_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BlenderCNNError(path, f"is not readable JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != STATUS_FORMAT:
        raise BlenderCNNError(path, f"is not a blender_cnn live run status (format {STATUS_FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or version > STATUS_VERSION:
        raise BlenderCNNError(
            path, f"is live status version {version!r}; this blender_cnn reads up to version {STATUS_VERSION}"
        )
    epochs, bundle, state, last = data.get("epochs"), data.get("bundle"), data.get("state"), data.get("last_epoch")
    if (
        not isinstance(epochs, list)
        or not epochs
        or not all(isinstance(epoch, int) for epoch in epochs)
        or not isinstance(bundle, str)
        or state not in STATES
        or not (last is None or isinstance(last, int))
    ):
        raise BlenderCNNError(path, "lacks its epochs, bundle or state, or holds them in the wrong form")
    folder = os.path.dirname(os.path.abspath(path))
    return LiveStatus(folder, str(data.get("name", "")), tuple(epochs), os.path.join(folder, bundle), state, last)


def write_status(
    run_dir: str | os.PathLike[str],
    name: str,
    epochs: Sequence[int],
    bundle: str,
    state: str = TRAINING,
    last_epoch: int | None = None,
) -> str:
    """Write ``live.json`` (``bundle``: a path inside ``run_dir``) by a rename, so it is whole or absent."""
    if state not in STATES:
        raise BlenderCNNError("live status", f"state must be one of {STATES}, got {state!r}")
    run_dir = os.fspath(run_dir)
    data: dict[str, Any] = {
        "format": STATUS_FORMAT,
        "version": STATUS_VERSION,
        "name": name,
        "epochs": [int(epoch) for epoch in epochs],
        "bundle": os.path.relpath(bundle, run_dir),
        "state": state,
        "last_epoch": last_epoch,
    }
    path = status_path(run_dir)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    os.replace(partial, path)
    return path


def remove_live_files(run_dir: str | os.PathLike[str]) -> None:
    """Delete what an earlier live training left in ``run_dir``: its status and bundles."""
    path = status_path(run_dir)
    if os.path.exists(path):
        os.remove(path)
    shutil.rmtree(os.path.join(os.fspath(run_dir), BUNDLE_FOLDER), ignore_errors=True)
