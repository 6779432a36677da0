"""Run the checkpoint extractor as a job that a UI can poll, in this Python or in another one.

No bpy and no TensorFlow here: Blender's operator wraps these jobs, scripts
and tests use them directly. Two kinds of job share one interface
(``poll``, ``cancel``, ``wait``, progress and one-line errors):

* ``SubprocessExtraction`` runs ``python -m blender_cnn.extract SOURCE --out
  BUNDLE ...`` in a Python that has TensorFlow, for the usual case of a
  Blender without it;
* ``InProcessExtraction`` calls the extractor in a thread of this Python,
  when TensorFlow is importable here.

``start_extraction`` picks one. Each job writes into a fresh folder of its
own inside ``out_dir`` and moves the finished bundle next to it, so a failed
or cancelled job leaves nothing behind and a finished one never leaves a
half-written file.
"""

import hashlib
from abc import ABC, abstractmethod
import importlib.util
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..core.bundle import FILE_SUFFIX
from ..core.errors import BlenderCNNError

RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

TENSORFLOW_REQUIREMENT = "tensorflow-cpu==2.21.0"
PREFERENCE_LOCATION = "Edit > Preferences > Add-ons > Blender CNN"
PREFERENCE_NAME = "Python with TensorFlow"
# The extractor prints one line per checkpoint it has read: "epoch N: ...".
EPOCH_LINE = re.compile(r"^epoch (\d+):")
# The extractor's CLI reports a user error as "error: <where>: <message>" and exits 2.
ERROR_PREFIX = "error: "
NUMBER = re.compile(r"\d+")
# What the extractor reads as checkpoints (TensorFlow's by their .index file); for the progress total only.
CHECKPOINT_SUFFIXES = (".keras", ".h5", ".hdf5", ".index")
TENSORFLOW_CHECK_SECONDS = 60
TERMINATE_SECONDS = 5

# The add-on's root package folder (``blender_cnn``, or the extension's folder, named by its id).
ADDON_ROOT = Path(__file__).resolve().parent.parent
EXTRACT_MODULE = f"{ADDON_ROOT.name}.extract"


class ExtractionCancelled(BlenderCNNError):
    def __init__(self, source):
        super().__init__(source, "extraction was cancelled")


def tensorflow_in_this_python():
    """Whether TensorFlow could be imported here, found without importing it (that takes seconds)."""
    return importlib.util.find_spec("tensorflow") is not None


class TensorFlowMissing(BlenderCNNError):
    """No Python to run the extractor in; reads as a sentence rather than "where: what"."""

    def __init__(self):
        message = (f"is not importable in Blender's Python. Set '{PREFERENCE_NAME}' in {PREFERENCE_LOCATION} to a "
                   f"Python that has {TENSORFLOW_REQUIREMENT} (for example this project's .venv/bin/python)")
        super().__init__("TensorFlow", message)
        self.args = (f"TensorFlow {message}",)

    def __str__(self):
        return self.args[0]


def no_tensorflow_error():
    return TensorFlowMissing()


def check_external_python(python):
    """Raise a ``BlenderCNNError`` unless ``python`` runs and can import TensorFlow."""
    python = os.fspath(python)
    if os.path.isdir(python):
        raise BlenderCNNError(python, f"is a folder; set '{PREFERENCE_NAME}' to the Python program inside it "
                                      "(bin/python, or Scripts\\python.exe on Windows)")
    if not os.path.isfile(python):
        raise BlenderCNNError(python, f"does not exist; set '{PREFERENCE_NAME}' in {PREFERENCE_LOCATION} "
                                      f"to a Python that has {TENSORFLOW_REQUIREMENT}")
    # find_spec answers in milliseconds where importing TensorFlow takes seconds.
    probe = [python, "-c",
             "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"]
    try:
        result = subprocess.run(probe, env=child_environment(), capture_output=True, text=True,
                                timeout=TENSORFLOW_CHECK_SECONDS, **_no_console_window())
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BlenderCNNError(python, f"cannot be run as Python ({error})") from None
    if result.returncode == 1:
        raise BlenderCNNError(python, f"has no TensorFlow; install it there with "
                                      f"'{python} -m pip install {TENSORFLOW_REQUIREMENT}', or set "
                                      f"'{PREFERENCE_NAME}' in {PREFERENCE_LOCATION} to a Python that has it")
    if result.returncode != 0:
        raise BlenderCNNError(python, "cannot be run as Python (" + last_line(result.stderr, result.returncode) + ")")


@dataclass(frozen=True)
class ExtractionOptions:
    """What the user chose beyond the source; what is left unset, the extractor decides."""

    architecture: str | None = None
    samples: str | None = None
    images: tuple = ()
    samples_per_class: int | None = None
    float16: bool = False
    allow_unsafe: bool = False

    def command_arguments(self):
        """The extractor CLI's options for these choices."""
        arguments = []
        if self.architecture:
            arguments += ["--architecture", os.fspath(self.architecture)]
        if self.samples:
            arguments += ["--samples", os.fspath(self.samples)]
        if self.images:
            arguments += ["--images", *map(os.fspath, self.images)]
        if self.samples_per_class:
            arguments += ["--samples-per-class", str(self.samples_per_class)]
        if self.float16:
            arguments.append("--float16")
        if self.allow_unsafe:
            arguments.append("--allow-unsafe")
        return arguments

    def keyword_arguments(self):
        """The same choices as keyword arguments of ``keras_bundle.extract``."""
        chosen = {"architecture": self.architecture, "samples": self.samples, "images": list(self.images) or None,
                  "samples_per_class": self.samples_per_class, "allow_unsafe": self.allow_unsafe,
                  "activations_dtype": "float16" if self.float16 else None}
        return {key: value for key, value in chosen.items() if value}


def extract_command(python, source, out_path, options=None):
    """The extractor's command line as an argument list; options the user left unset are left out."""
    options = options or ExtractionOptions()
    return [os.fspath(python), "-m", EXTRACT_MODULE, os.fspath(source), "--out", os.fspath(out_path),
            *options.command_arguments()]


def child_environment(base=None):
    """This process' environment, with the add-on importable and Python's output unbuffered.

    PYTHONPATH and PYTHONHOME are replaced, not extended: Blender's own would
    point another Python at the wrong standard library.
    """
    environment = dict(os.environ if base is None else base)
    environment.pop("PYTHONHOME", None)
    environment["PYTHONPATH"] = str(ADDON_ROOT.parent)
    # Piped output is block-buffered otherwise, and progress would arrive all at once at the end.
    environment["PYTHONUNBUFFERED"] = "1"
    environment["PYTHONIOENCODING"] = "utf-8"
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return environment


def parse_epoch(line):
    """The epoch number of an extractor progress line, or None."""
    match = EPOCH_LINE.match(line.strip())
    return int(match.group(1)) if match else None


def error_message(stderr_lines, returncode):
    """One readable line for a failed extractor: its own ``error:`` line, else the last line it printed."""
    for line in reversed(stderr_lines):
        if line.startswith(ERROR_PREFIX):
            return line[len(ERROR_PREFIX):].strip()
    return last_line("\n".join(stderr_lines), returncode)


def last_line(text, returncode):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else f"exited with code {returncode} and printed no error"


def expected_epoch_count(source):
    """How many checkpoints the extractor will read from ``source``, or None when that is not known.

    In a folder the epochs are the files whose names differ only in a number
    (``epoch_003.keras``); the largest such group is the one the extractor picks.
    """
    source = os.fspath(source)
    if not os.path.isdir(source):
        return 1 if source.endswith(CHECKPOINT_SUFFIXES) else None
    groups = {}
    for name in os.listdir(source):
        if name.endswith(CHECKPOINT_SUFFIXES):
            pattern = NUMBER.sub("#", name)
            groups[pattern] = groups.get(pattern, 0) + 1
    return max(groups.values()) if groups else None


def bundle_name(source):
    """``<source name>-<hash of its path>.bcnn.npz``: re-importing a source replaces its bundle,
    two runs with the same folder name do not."""
    source = os.path.abspath(os.fspath(source))
    stem = os.path.basename(os.path.normpath(source))
    for suffix in (".weights.h5", *CHECKPOINT_SUFFIXES):
        stem = stem.removesuffix(suffix)
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
    return f"{stem or 'network'}-{digest}{FILE_SUFFIX}"


class ExtractionJob(ABC):
    """An extraction that runs in the background; ``poll`` it, ``cancel`` it or ``wait`` for it."""

    def __init__(self, source, out_dir):
        self.source = os.fspath(source)
        self.out_dir = os.fspath(out_dir)
        os.makedirs(self.out_dir, exist_ok=True)
        # A folder of its own: removing it removes every trace of a failed or cancelled job.
        self.work_dir = tempfile.mkdtemp(prefix=".extracting-", dir=self.out_dir)
        self.work_bundle = os.path.join(self.work_dir, bundle_name(self.source))
        self.bundle_path = os.path.join(self.out_dir, bundle_name(self.source))
        self.epoch_total = expected_epoch_count(self.source)
        self.epochs_done = 0
        self.last_epoch = None
        self.state = RUNNING
        self.error = None

    @property
    def status_text(self):
        if self.state == FAILED:
            return f"Extraction failed: {self.error}"
        if self.state == CANCELLED:
            return "Extraction cancelled"
        if self.state == FINISHED:
            return f"Extracted {self.epochs_done} epochs"
        if self.last_epoch is None:
            return "Extracting: starting TensorFlow... (Esc to cancel)"
        total = f"/{self.epoch_total}" if self.epoch_total else ""
        return f"Extracting: epoch {self.last_epoch} read, {self.epochs_done}{total} checkpoints (Esc to cancel)"

    def _take_line(self, line):
        epoch = parse_epoch(line)
        if epoch is not None:
            self.last_epoch = epoch
            self.epochs_done += 1

    def _finish(self, error=None):
        if error is None and not os.path.isfile(self.work_bundle):
            error = f"{self.source}: the extractor finished but wrote no bundle"
        if error is None:
            try:
                os.replace(self.work_bundle, self.bundle_path)
                self.state = FINISHED
            except OSError as move_error:  # e.g. Windows, where a bundle still open elsewhere cannot be replaced
                error = f"{self.bundle_path}: cannot be written ({move_error.strerror or move_error})"
        if error is not None:
            self.state, self.error = FAILED, error
        shutil.rmtree(self.work_dir, ignore_errors=True)

    @abstractmethod
    def poll(self):
        """Take in what the job has done since the last call; returns the state."""

    @abstractmethod
    def cancel(self):
        """Stop the job and remove what it wrote; the scene is never touched."""

    def wait(self, interval=0.1):
        """Block until the job ends; returns the bundle path or raises ``BlenderCNNError``."""
        while self.poll() == RUNNING:
            time.sleep(interval)
        if self.state == FAILED:
            raise _error_from_line(self.error, self.source)
        if self.state == CANCELLED:
            raise ExtractionCancelled(self.source)
        return self.bundle_path


def _error_from_line(line, source):
    """A ``BlenderCNNError`` whose text is exactly ``line`` ("<where>: <message>" when it has that form)."""
    where, separator, message = line.partition(": ")
    if not separator:
        return BlenderCNNError(source, line)
    return BlenderCNNError(where, message)


class SubprocessExtraction(ExtractionJob):
    """The extractor's CLI in another Python, read line by line as it runs."""

    def __init__(self, python, source, out_dir, options=None):
        super().__init__(source, out_dir)
        self.command = extract_command(python, self.source, self.work_bundle, options)
        self._lines = queue.Queue()
        self.stderr_lines = []
        try:
            # The work folder as cwd: "python -m" puts the cwd first on sys.path, where stray files would shadow
            # modules.
            self.process = subprocess.Popen(
                self.command, cwd=self.work_dir, env=child_environment(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                **_no_console_window())
        except OSError as error:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise BlenderCNNError(python, f"cannot be run ({error})") from None
        # Threads drain both pipes so a chatty process never blocks on a full pipe.
        self._readers = [threading.Thread(target=self._read, args=(stream, name), daemon=True)
                         for stream, name in ((self.process.stdout, "out"), (self.process.stderr, "err"))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, name):
        for line in stream:
            self._lines.put((name, line.rstrip("\r\n")))
        stream.close()

    def _drain(self):
        while True:
            try:
                name, line = self._lines.get_nowait()
            except queue.Empty:
                return
            if name == "out":
                self._take_line(line)
            else:
                self.stderr_lines.append(line)

    def poll(self):
        if self.state != RUNNING:
            return self.state
        returncode = self.process.poll()
        if returncode is not None:
            for reader in self._readers:
                reader.join(TERMINATE_SECONDS)  # the pipes close with the process, unless it left children
        self._drain()
        if returncode is not None:
            self._finish(None if returncode == 0 else error_message(self.stderr_lines, returncode))
        return self.state

    def cancel(self):
        if self.state != RUNNING:
            return
        self.process.terminate()
        try:
            self.process.wait(TERMINATE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(TERMINATE_SECONDS)
        self.state = CANCELLED
        shutil.rmtree(self.work_dir, ignore_errors=True)


class InProcessExtraction(ExtractionJob):
    """The extractor in a thread of this Python; cancelling stops it at its next progress line."""

    def __init__(self, source, out_dir, options=None):
        super().__init__(source, out_dir)
        self._options = options or ExtractionOptions()
        self._lines = queue.Queue()
        self._cancel_requested = threading.Event()
        self._outcome = None  # (error line or None), set by the thread when it ends
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _log(self, line):
        # The extractor calls this between checkpoints: the one safe point to stop a thread.
        if self._cancel_requested.is_set():
            raise ExtractionCancelled(self.source)
        self._lines.put(str(line))

    def _run(self):
        try:
            run_extractor(self.source, self.work_bundle, self._options, log=self._log)
            outcome = None
        except ExtractionCancelled:
            outcome = CANCELLED
        except BlenderCNNError as error:
            outcome = str(error)
        except Exception as error:  # a bug or a TensorFlow failure: keep the trace for the console
            traceback.print_exc()
            outcome = last_line(f"{type(error).__name__}: {error}", 1)
        with self._lock:
            self._outcome = (outcome,)
            if self._cancel_requested.is_set():
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def poll(self):
        if self.state != RUNNING:
            return self.state
        while True:
            try:
                self._take_line(self._lines.get_nowait())
            except queue.Empty:
                break
        if self._outcome is not None:
            (outcome,) = self._outcome
            if outcome == CANCELLED:
                self.state = CANCELLED
            else:
                self._finish(outcome)
        return self.state

    def cancel(self):
        """Returns at once; the thread removes the work folder when it stops, at the next checkpoint."""
        if self.state != RUNNING:
            return
        with self._lock:
            self._cancel_requested.set()
            if self._outcome is not None:
                shutil.rmtree(self.work_dir, ignore_errors=True)
        self.state = CANCELLED

    def join(self, timeout=None):
        """Wait for the thread itself, which may outlive a cancel by one checkpoint."""
        self._thread.join(timeout)


def run_extractor(source, out_path, options=None, log=print):
    """Call the extractor's Python API in this process (TensorFlow must be importable)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .keras_bundle import extract

    return extract(source, out_path, log=log, **(options or ExtractionOptions()).keyword_arguments())


def start_extraction(source, out_dir, python_path="", options=None, in_process=None):
    """Start extracting ``source`` (a checkpoint file or run folder) into a bundle in ``out_dir``.

    Runs in this Python when TensorFlow is importable here (``in_process``
    None), else in ``python_path``, which is checked for TensorFlow first.
    Raises ``BlenderCNNError`` with what to install and where when neither can.
    """
    source = os.fspath(source)
    # A TensorFlow checkpoint may be named by its prefix (ckpt-5 for ckpt-5.index and its data files).
    if not source or not (os.path.exists(source) or os.path.exists(source + ".index")):
        raise BlenderCNNError(source or "source", "no such checkpoint file or run folder")
    if in_process is None:
        in_process = tensorflow_in_this_python()
    if in_process:
        return InProcessExtraction(source, out_dir, options)
    if not python_path:
        raise no_tensorflow_error()
    check_external_python(python_path)
    return SubprocessExtraction(python_path, source, out_dir, options)


def _no_console_window():
    # On Windows each child would otherwise flash a console window over Blender.
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NO_WINDOW}
    return {}
