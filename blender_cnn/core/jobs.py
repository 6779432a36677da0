"""Run long work (TensorFlow's above all) as jobs a UI can poll, in this Python or in another one.

No bpy and no TensorFlow here: Blender's operators wrap these jobs, scripts
and tests use them directly. A ``Task`` says what to do: a label for the
status line, what an error names, where the finished output goes, the CLI
that does the work in another Python and the function that does it here,
and how many progress steps to expect. Two kinds of job run a task behind
one interface (``poll``, ``cancel``, ``wait``, progress and one-line errors):

* ``SubprocessJob`` runs the task's CLI (``python -m <add-on>.extract...``)
  in a Python that has TensorFlow, for the usual case of a Blender without
  it, reading its output line by line as it runs;
* ``ThreadJob`` calls the task's function in a thread of this Python, when
  TensorFlow is importable here, and for numpy work, which needs no other
  Python.

The tasks: ``extract.extraction.start_extraction`` (checkpoints to a
bundle), ``extract.export.start_export`` (a design to a .keras file),
``extract.train_design.start_training`` (a design trained, its run
extracted) and the designer's bundle of a design (numpy, in a thread).
They know this module; it knows none of them, so any layer can run a job.

Progress comes from the lines the work prints (or logs): ``epoch N: ...``
and ``layer NAME: ...`` are one step each, and ``stage: LABEL`` starts the
task's next stage (a training run's extraction). Each job works in a fresh
folder of its own beside its output and moves the finished output into
place, so a failed or cancelled job leaves nothing behind and a finished one
never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import BlenderCNNError
from .pins import pinned

RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

TENSORFLOW_REQUIREMENT = pinned("tensorflow-cpu")  # as requirements.txt pins it
# The modules a task's work imports (``Task.needs``): TensorFlow for Keras work, onnx and onnxruntime for ONNX files.
TENSORFLOW = ("tensorflow",)
ONNX_RUNTIME = ("onnx", "onnxruntime")
PREFERENCE_LOCATION = "Edit > Preferences > Add-ons > Blender CNN"
PREFERENCE_NAME = "Python with TensorFlow"
INSTALL_BUTTON = "Install TensorFlow"
# A step of progress, as the extractor, the trainer and the designer's bundle print them: "epoch 3: ...";
# the TensorFlow install (extract/environment.py) prints "package NAME: ...", "download NAME: ..." and "step NAME: ...".
PROGRESS_LINE = re.compile(r"^((?:epoch|layer|package|download|step) [^:]+):")
STAGE_PREFIX = "stage: "
# The CLIs report a user error as "error: <where>: <message>" and exit 2.
ERROR_PREFIX = "error: "
WORD_GAPS = re.compile(r"\W+")
# The design a CLI works on, written into the job's work folder (the CLI's current folder).
DESIGN_FILE = "design.json"
TENSORFLOW_CHECK_SECONDS = 60
INTERRUPTED_EXIT_CODE = 130  # what a shell reports for a program Ctrl-C stopped
TERMINATE_SECONDS = 5

# The add-on's root package folder (``blender_cnn``, or the extension's folder, named by its id).
ADDON_ROOT = Path(__file__).resolve().parent.parent


class JobCancelled(BlenderCNNError):
    def __init__(self, source: object, label: str = "the job") -> None:
        super().__init__(source, f"{label.lower()} was cancelled")


def modules_in_this_python(modules: Sequence[str]) -> bool:
    """Whether every one of ``modules`` could be imported here, found without importing them (TensorFlow's
    import takes seconds)."""
    return all(importlib.util.find_spec(module) is not None for module in modules)


def tensorflow_in_this_python() -> bool:
    return modules_in_this_python(TENSORFLOW)


def _named(modules: Sequence[str]) -> str:
    """How a message names the packages a task needs: "TensorFlow", "onnx and onnxruntime"."""
    return "TensorFlow" if tuple(modules) == TENSORFLOW else " and ".join(modules)


def _requirements(modules: Sequence[str]) -> str:
    """The pinned requirements that provide ``modules`` (TensorFlow's CPU wheel for "tensorflow")."""
    return " ".join(TENSORFLOW_REQUIREMENT if module == "tensorflow" else pinned(module) for module in modules)


class PackagesMissing(BlenderCNNError):
    """No Python to run the work in; reads as a sentence rather than "where: what"."""

    def __init__(self, modules: Sequence[str] = TENSORFLOW) -> None:
        message = (
            f"{'is' if len(modules) == 1 else 'are'} not importable in Blender's Python. Set '{PREFERENCE_NAME}' "
            f"in {PREFERENCE_LOCATION} to a Python that has {_requirements(modules)} (for example this project's "
            f".venv/bin/python), or press '{INSTALL_BUTTON}' there"
        )
        super().__init__(_named(modules), message)
        self.args = (f"{_named(modules)} {message}",)

    def __str__(self) -> str:
        return self.args[0]


def no_tensorflow_error() -> PackagesMissing:
    return PackagesMissing(TENSORFLOW)


def check_external_python(python: str | os.PathLike[str], modules: Sequence[str] = TENSORFLOW) -> None:
    """Raise a ``BlenderCNNError`` unless ``python`` runs and can import ``modules`` (TensorFlow)."""
    python = os.fspath(python)
    if os.path.isdir(python):
        raise BlenderCNNError(
            python,
            f"is a folder; set '{PREFERENCE_NAME}' to the Python program inside it "
            "(bin/python, or Scripts\\python.exe on Windows)",
        )
    if not os.path.isfile(python):
        raise BlenderCNNError(
            python,
            f"does not exist; set '{PREFERENCE_NAME}' in {PREFERENCE_LOCATION} "
            f"to a Python that has {_requirements(modules)}",
        )
    # find_spec answers in milliseconds where importing TensorFlow takes seconds.
    probe = [
        python,
        "-c",
        f"import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in {list(modules)!r}))",
    ]
    try:
        result = subprocess.run(
            probe,
            env=child_environment(),
            capture_output=True,
            text=True,
            timeout=TENSORFLOW_CHECK_SECONDS,
            **_no_console_window(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BlenderCNNError(python, f"cannot be run as Python ({error})") from None
    if result.returncode == 1:
        raise BlenderCNNError(
            python,
            f"has no {_named(modules)}; install it there with "
            f"'{python} -m pip install {_requirements(modules)}', or set "
            f"'{PREFERENCE_NAME}' in {PREFERENCE_LOCATION} to a Python that has it",
        )
    if result.returncode != 0:
        raise BlenderCNNError(python, "cannot be run as Python (" + last_line(result.stderr, result.returncode) + ")")


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
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


def module_command(module: str, *arguments: str | os.PathLike[str]) -> list[str]:
    """``-m <add-on>.<module> ARGUMENTS``: a CLI of this add-on, whatever its package is called when installed."""
    return ["-m", f"{ADDON_ROOT.name}.{module}", *(os.fspath(argument) for argument in arguments)]


def design_input(design: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The work folder's input files for a CLI that reads a design: ``DESIGN_FILE`` with ``design``."""
    return ((DESIGN_FILE, json.dumps(design, indent=1)),)


def design_cli(module: str, description: str, output: str, output_help: str) -> argparse.ArgumentParser:
    """The parser of a CLI that reads a design and writes ``output``: ``python -m blender_cnn.MODULE DESIGN OUTPUT``."""
    parser = argparse.ArgumentParser(prog=f"python -m blender_cnn.{module}", description=description)
    parser.add_argument("design", metavar="DESIGN", help="a design or preset JSON file")
    parser.add_argument(output, metavar=output.upper(), help=output_help)
    return parser


def parse_progress(line: str) -> str | None:
    """The step a progress line reports ("epoch 12", "layer conv1"), or None."""
    match = PROGRESS_LINE.match(line.strip())
    return match.group(1) if match else None


def one_line(error: object) -> str:
    """An error's text on one line: a design's list of problems joined by '; '."""
    first, *rest = str(error).splitlines() or [""]
    rest = [line.strip() for line in rest if line.strip()]
    return f"{first} {'; '.join(rest)}" if rest else first


def run_cli(action: Callable[[], object]) -> int:
    """A command line's body: ``action()``, with a BlenderCNNError printed as one ``error:`` line (exit code 2).

    The jobs read that line back (``error_message``) as the error to report.
    """
    try:
        action()
    except BlenderCNNError as error:
        print(f"{ERROR_PREFIX}{one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the work cleans up after itself on the way out; one line, no traceback
        print(f"{ERROR_PREFIX}interrupted; nothing was written", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    return 0


def error_message(stderr_lines: Sequence[str], returncode: int) -> str:
    """One readable line for a failed CLI: its own ``error:`` line, else the last line it printed."""
    for line in reversed(stderr_lines):
        if line.startswith(ERROR_PREFIX):
            return line[len(ERROR_PREFIX) :].strip()
    return last_line("\n".join(stderr_lines), returncode)


def last_line(text: str, returncode: int) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else f"exited with code {returncode} and printed no error"


# ---------------------------------------------------------------- tasks and jobs


@dataclass(frozen=True)
class Task:
    """One piece of work a job runs; ``out_path`` is written only once the work is complete."""

    label: str  # the status line's first word: "Extracting", "Exporting", "Training"
    source: str  # what an error names when the work names nothing itself
    out_path: str  # the finished output, a file or a folder
    # The work in this Python: run(work_output, log, should_stop).
    run: Callable[[str, Callable[[str], None], Callable[[], bool]], object]
    # Its CLI after the Python: command(work_output) -> arguments; None: here only.
    command: Callable[[str], list[str]] | None = None
    progress_total: int | None = None  # how many progress lines to expect; None when unknown
    result: str = ""  # the path inside a folder output that callers want (a run's bundle)
    inputs: tuple[tuple[str, str], ...] = ()  # ((file name, text), ...) the CLI reads from its current folder
    starting: str = "starting TensorFlow..."
    needs: tuple[str, ...] = TENSORFLOW  # the modules its work imports, in this Python or the other one


class Job(ABC):
    """A task running in the background; ``poll`` it, ``cancel`` it or ``wait`` for it."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.source = os.fspath(task.source)
        self.out_path = os.fspath(task.out_path)
        out_dir = os.path.dirname(os.path.abspath(self.out_path))
        os.makedirs(out_dir, exist_ok=True)
        # A folder of its own beside the output: removing it removes every trace of a failed or cancelled
        # job, and on the same disk the finished output moves into place in one step.
        self.work_dir = tempfile.mkdtemp(prefix=f".{WORD_GAPS.sub('-', task.label.lower())}-", dir=out_dir)
        self.work_output = os.path.join(self.work_dir, os.path.basename(os.path.normpath(self.out_path)))
        self.label = task.label
        self.progress_total = task.progress_total
        self.progress_done = 0
        self.last_step: str | None = None
        self.state = RUNNING
        self.error: str | None = None

    @property
    def result_path(self) -> str:
        """What the job made: its output, or the file inside it that callers want."""
        return os.path.join(self.out_path, self.task.result) if self.task.result else self.out_path

    bundle_path = result_path  # the name callers of an extraction know it by

    @property
    def status_text(self) -> str:
        if self.state == FAILED:
            return f"{self.label} failed: {self.error}"
        if self.state == CANCELLED:
            return f"{self.label} cancelled"
        if self.state == FINISHED:
            return f"{self.label} done: {self.result_path}"
        if self.last_step is None:
            return f"{self.label}: {self.task.starting} (Esc to cancel)"
        total = f"/{self.progress_total}" if self.progress_total else ""
        return f"{self.label}: {self.last_step}, {self.progress_done}{total} done (Esc to cancel)"

    def _take_line(self, line: str) -> None:
        if line.startswith(STAGE_PREFIX):
            self.label = line[len(STAGE_PREFIX) :].strip() or self.label
            return
        step = parse_progress(line)
        if step is not None:
            self.last_step = step
            self.progress_done += 1

    def _finish(self, error: str | None = None) -> None:
        if error is None and not os.path.exists(self.work_output):
            error = f"{self.source}: {self.label.lower()} ended without writing {os.path.basename(self.out_path)}"
        if error is None:
            try:
                _move_into_place(self.work_output, self.out_path, self.work_dir)
                self.state = FINISHED
            except OSError as move_error:  # e.g. Windows, where a file still open elsewhere cannot be replaced
                error = f"{self.out_path}: cannot be written ({move_error.strerror or move_error})"
        if error is not None:
            self.state, self.error = FAILED, error
        shutil.rmtree(self.work_dir, ignore_errors=True)

    @abstractmethod
    def poll(self) -> str:
        """Take in what the job has done since the last call; returns the state."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the job and remove what it wrote; the scene is never touched."""

    def poll_until(self, seconds: float | None = None, interval: float = 0.02) -> str:
        """Poll until the job ends or ``seconds`` (None: no limit) pass; returns the state."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while self.poll() == RUNNING and (deadline is None or time.monotonic() < deadline):
            time.sleep(interval)
        return self.state

    def wait(self, interval: float = 0.02) -> str:
        """Block until the job ends; returns ``result_path`` or raises ``BlenderCNNError``."""
        self.poll_until(None, interval)
        if self.state == FAILED:
            assert self.error is not None  # _finish sets the error with the FAILED state
            raise _error_from_line(self.error, self.source)
        if self.state == CANCELLED:
            raise JobCancelled(self.source, self.task.label)
        return self.result_path


def _move_into_place(work_output: str, out_path: str, work_dir: str) -> None:
    """Move the finished output to ``out_path``; a folder there (an earlier run) is replaced whole."""
    if not os.path.isdir(out_path):
        os.replace(work_output, out_path)
        return
    # os.replace cannot replace a folder that holds files: move the old one aside first, and back on failure.
    aside = os.path.join(work_dir, ".replaced")
    os.replace(out_path, aside)
    try:
        os.replace(work_output, out_path)
    except OSError:
        os.replace(aside, out_path)
        raise


def _error_from_line(line: str, source: str) -> BlenderCNNError:
    """A ``BlenderCNNError`` whose text is exactly ``line`` ("<where>: <message>" when it has that form)."""
    where, separator, message = line.partition(": ")
    if not separator:
        return BlenderCNNError(source, line)
    return BlenderCNNError(where, message)


class SubprocessJob(Job):
    """The task's CLI in another Python, read line by line as it runs."""

    def __init__(self, task: Task, python: str | os.PathLike[str]) -> None:
        super().__init__(task)
        assert task.command is not None  # start_job runs a task without a CLI in a thread
        self.command = [os.fspath(python), *task.command(self.work_output)]
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.stderr_lines: list[str] = []
        try:
            for name, text in task.inputs:
                with open(os.path.join(self.work_dir, name), "w", encoding="utf-8") as handle:
                    handle.write(text)
            # The work folder as cwd: the CLI finds its inputs there, and "python -m" puts the cwd first on
            # sys.path, where stray files elsewhere would shadow modules.
            self.process = start_text_process(
                self.command, cwd=self.work_dir, env=child_environment(), stderr=subprocess.PIPE, **_no_console_window()
            )
        except OSError as error:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise BlenderCNNError(python, f"cannot be run ({error})") from None
        # Threads drain both pipes so a chatty process never blocks on a full pipe.
        self._readers = [
            threading.Thread(target=self._read, args=(stream, name), daemon=True)
            for stream, name in ((self.process.stdout, "out"), (self.process.stderr, "err"))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], name: str) -> None:
        for line in stream:
            self._lines.put((name, line.rstrip("\r\n")))
        stream.close()

    def _drain(self) -> None:
        while True:
            try:
                name, line = self._lines.get_nowait()
            except queue.Empty:
                return
            if name == "out":
                self._take_line(line)
            else:
                self.stderr_lines.append(line)

    def poll(self) -> str:
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

    def cancel(self) -> None:
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


class ThreadJob(Job):
    """The task's function in a thread of this Python; cancelling stops it at its next progress line."""

    def __init__(self, task: Task) -> None:
        super().__init__(task)
        self._lines: queue.Queue[str] = queue.Queue()
        self._cancel_requested = threading.Event()
        self._outcome: tuple[str | None] | None = None  # (error line or None), set by the thread when it ends
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _log(self, line: object) -> None:
        # The work calls this between its steps: the one safe point to stop a thread.
        if self._cancel_requested.is_set():
            raise JobCancelled(self.source, self.task.label)
        self._lines.put(str(line))

    def _run(self) -> None:
        outcome: str | None
        try:
            self.task.run(self.work_output, self._log, self._cancel_requested.is_set)
            outcome = None
        except Exception as error:
            if self._cancel_requested.is_set():
                outcome = CANCELLED
            elif isinstance(error, BlenderCNNError):
                outcome = one_line(error)
            else:  # a bug or a TensorFlow failure: keep the trace for the console
                traceback.print_exc()
                outcome = last_line(f"{type(error).__name__}: {error}", 1)
        with self._lock:
            self._outcome = (outcome,)
            if self._cancel_requested.is_set():
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def poll(self) -> str:
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

    def cancel(self) -> None:
        """Returns at once; the thread removes the work folder when it stops, at its next step."""
        if self.state != RUNNING:
            return
        with self._lock:
            self._cancel_requested.set()
            if self._outcome is not None:
                shutil.rmtree(self.work_dir, ignore_errors=True)
        self.state = CANCELLED

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread itself, which may outlive a cancel by one step."""
        self._thread.join(timeout)


def start_job(task: Task, python_path: str | os.PathLike[str] = "", in_process: bool | None = None) -> Job:
    """Start ``task``: in this Python when the modules it needs are importable here (``in_process`` None) or
    the task has no CLI, else in ``python_path``, which is checked for them first. Raises ``BlenderCNNError``
    with what to install and where when neither can."""
    if task.command is None:
        in_process = True
    elif in_process is None:
        in_process = modules_in_this_python(task.needs)
    if in_process:
        return ThreadJob(task)
    if not python_path:
        raise PackagesMissing(task.needs)
    check_external_python(python_path, task.needs)
    return SubprocessJob(task, python_path)


def start_text_process(command: Sequence[str], **options: Any) -> subprocess.Popen[str]:
    """Start ``command`` with no input and its output read as lines of UTF-8 text (undecodable bytes replaced);
    ``options`` are Popen's others (``stderr``, ``env``...)."""
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        **options,
    )


def _no_console_window() -> dict[str, Any]:
    # On Windows each child would otherwise flash a console window over Blender.
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NO_WINDOW}
    return {}
