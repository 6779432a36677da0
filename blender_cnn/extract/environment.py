"""A Python of the add-on's own that has TensorFlow: what Install TensorFlow (the add-on's preferences) makes.

``start_install(folder)`` runs this module's CLI (``python -m <add-on>.extract.environment OUT``) as a
``core.jobs`` job in Blender's own Python. The CLI makes a virtual environment with that Python
(``python -m venv``), installs the extractor's pinned packages into it (``core/pins.py``: tensorflow-cpu,
keras, h5py and numpy, then tf-keras with ``--no-deps``) with pip, from whatever package index pip is set up
with (pip.conf, ``PIP_INDEX_URL``...), and checks that TensorFlow imports there. The job builds it in a work
folder beside ``folder/ENVIRONMENT_NAME`` and renames it into place only when everything worked, so a
cancelled or failed install leaves nothing, and a reinstall replaces the old environment in one step.

Why a virtual environment and not ``pip install --target``: the environment has a ``python`` of its own,
which is exactly what the extraction jobs run when Blender's Python has no TensorFlow (the preference
*Python with TensorFlow*), with its own numpy and protobuf; TensorFlow never loads into Blender's process,
whose numpy it would have to share. See docs/importing.md.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

from ..core import jobs
from ..core.errors import BlenderCNNError
from ..core.pins import extractor_requirements

ENVIRONMENT_NAME = "tensorflow"
# Written last into the environment: what was installed, for the preferences to show and compare.
MARKER_FILE = "blender_cnn_environment.json"
LABEL = "Installing TensorFlow"
# pip lines that mean the index could not be reached at all (rather than answered "no such version").
UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|ConnectTimeout|"
    r"Name or service not known|Temporary failure in name resolution|nodename nor servname|"
    r"getaddrinfo failed|ProxyError|SSLError|Connection refused|Network is unreachable|"
    r"Max retries exceeded|Read timed out|RemoteDisconnected|Connection reset"
)
ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
DEFAULT_INDEX = "https://pypi.org/simple"
# Environment variables of the user's that would send pip's files elsewhere than into the environment.
PIP_REDIRECTS = ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_SRC")
CHECK_SCRIPT = (
    "import json, distributed, h5py, keras, numpy, onnx, onnxruntime, tensorflow, tf_keras; print(json.dumps("
    "{module.__name__: module.__version__ for module in (tensorflow, keras, tf_keras, h5py, numpy, onnx, "
    "onnxruntime, distributed)}))"
)
TERMINATE_SECONDS = 3

_running = []  # the child process this CLI waits for, which SIGTERM (a cancelled job) stops first


def environment_python(folder):
    """The ``python`` program of the virtual environment at ``folder``."""
    if sys.platform == "win32":
        return os.path.join(os.fspath(folder), "Scripts", "python.exe")
    return os.path.join(os.fspath(folder), "bin", "python")


def installed_environment(folder):
    """What the environment at ``folder/ENVIRONMENT_NAME`` holds (its marker file), or None when there is none
    that is complete. ``python`` in it is its Python program."""
    path = os.path.join(os.fspath(folder), ENVIRONMENT_NAME)
    try:
        with open(os.path.join(path, MARKER_FILE), encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    python = environment_python(path)
    if not isinstance(marker, dict) or not os.path.isfile(python):
        return None
    return {**marker, "python": python, "folder": path}


def is_current(marker):
    """Whether an installed environment (``installed_environment``) has the versions the add-on pins now."""
    requirements, no_deps = extractor_requirements()
    return marker.get("requirements") == requirements and marker.get("no_deps") == no_deps


def start_install(folder, python=None):
    """Start making ``folder/ENVIRONMENT_NAME`` with ``python`` (default: this one, Blender's); returns the job.

    Its ``result_path`` is the environment's folder, ``environment_python`` of it its Python.
    """
    python = os.fspath(python or sys.executable)
    requirements, no_deps = extractor_requirements()  # refuse a broken add-on before anything starts
    task = jobs.Task(
        LABEL,
        "TensorFlow",
        os.path.join(os.fspath(folder), ENVIRONMENT_NAME),
        run=lambda out_path, log, _should_stop: install(out_path, log),
        command=lambda out_path: jobs.module_command("extract.environment", out_path),
        starting=f"making a Python environment for {', '.join(requirements + no_deps)}...",
    )
    return jobs.SubprocessJob(task, python)


def install(out_path, log=print):
    """Make the environment at ``out_path`` (which must not exist) with this Python; see the module docstring."""
    started = time.perf_counter()
    requirements, no_deps = extractor_requirements()
    log(f"step environment: python -m venv with {sys.executable} (Python {sys.version.split()[0]})")
    code, lines = _run([sys.executable, "-m", "venv", out_path], log)
    python = environment_python(out_path)
    if code != 0 or not os.path.isfile(python):
        raise BlenderCNNError(sys.executable, f"cannot make a virtual environment ({_last_line(lines, code)})")
    pip = [
        python,
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--prefer-binary",
    ]
    for arguments in (requirements, ["--no-deps", *no_deps]):
        log(f"step pip: pip install {' '.join(arguments)}")
        code, lines = _run(pip + arguments, lambda line: log(_progress(line)))
        if code != 0:
            raise _pip_error(lines, code)
    log("step check: importing TensorFlow in the new environment")
    code, lines = _run([python, "-c", CHECK_SCRIPT], log)
    versions = next((json.loads(line) for line in reversed(lines) if line.startswith("{")), None)
    if code != 0 or not isinstance(versions, dict):
        raise BlenderCNNError(
            python, f"has the packages, but TensorFlow does not import there ({_last_line(lines, code)})"
        )
    marker = {
        "requirements": requirements,
        "no_deps": no_deps,
        "versions": versions,
        "made_with": sys.executable,
        "python_version": sys.version.split()[0],
    }
    with open(os.path.join(out_path, MARKER_FILE), "w", encoding="utf-8") as handle:
        json.dump(marker, handle, indent=1)
    log(
        f"installed {', '.join(f'{name} {version}' for name, version in versions.items())} into {out_path} "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return out_path


def _progress(line):
    """A pip line, or the progress line it amounts to ("package NAME: ...", "download NAME (SIZE): ...")."""
    stripped = line.strip()
    if stripped.startswith("Collecting "):
        return f"package {re.split(r'[<>=!~\[;( ]', stripped.split()[1])[0]}: {stripped}"
    if stripped.startswith("Processing ") and stripped.split()[1].endswith(".whl"):
        return f"package {os.path.basename(stripped.split()[1]).split('-')[0]}: {stripped}"
    match = re.match(r"Downloading (\S+) \(([^)]+)\)", stripped)
    if match:
        name, version = (os.path.basename(match.group(1)).split("-") + [""])[:2]
        return f"download {name} {version} ({match.group(2)}): {stripped}"
    if stripped.startswith("Installing collected packages:"):
        return f"step unpacking {len(stripped.split(':', 1)[1].split(','))} packages: {stripped}"
    return line


def _pip_error(lines, code):
    """One readable error for a failed pip: the index cannot be reached, has no such version, or pip's own."""
    errors = [line.strip()[len("ERROR: ") :] for line in lines if line.strip().startswith("ERROR: ")]
    unreachable = [line for line in lines if UNREACHABLE.search(line)]
    if unreachable:
        indexes = [DEFAULT_INDEX]
        for line in lines:
            if line.startswith("Looking in indexes:"):
                indexes = [url.strip() for url in line.split(":", 1)[1].split(",")]
        remote = [url for url in indexes if not url.startswith("file:")] or indexes
        reason = ERRNO_REASON.search(unreachable[-1])
        why = reason.group(1).strip() if reason else UNREACHABLE.search(unreachable[-1]).group(0)
        return BlenderCNNError(
            f"package index {', '.join(remote)}",
            f"cannot be reached ({why}); check the "
            "network connection, or pip's index settings (PIP_INDEX_URL, pip.conf). "
            "Nothing was installed",
        )
    missing = next((error for error in errors if error.startswith("No matching distribution found for ")), None)
    if missing:
        requirement = missing.removeprefix("No matching distribution found for ")
        return BlenderCNNError(
            requirement,
            f"is not in the package index for Python {sys.version.split()[0]} on {sys.platform}; nothing was installed",
        )
    return BlenderCNNError("pip", (errors[-1] if errors else _last_line(lines, code)) + "; nothing was installed")


def _last_line(lines, code):
    return jobs.last_line("\n".join(lines), code)


def _run(command, on_line):
    """Run ``command``, passing each line it prints (stdout and stderr) to ``on_line``; ``(exit code, lines)``."""
    environment = {
        key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", *PIP_REDIRECTS)
    }
    environment["PYTHONUNBUFFERED"] = "1"
    # A group of its own, so that a cancel stops what it starts too (venv runs ensurepip, pip may run builds);
    # SIGTERM waits until the process is known to _stop.
    blocked = hasattr(signal, "pthread_sigmask")
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        process = jobs.start_text_process(
            command, stderr=subprocess.STDOUT, env=environment, start_new_session=os.name == "posix"
        )
        _running.append(process)
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\r\n"))
            on_line(lines[-1])
        return process.wait(), lines
    finally:
        _running.remove(process)


def _stop(_signal_number, _frame):
    """SIGTERM (the job was cancelled): stop pip first, so nothing writes into the folder being removed."""
    for process in list(_running):
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(TERMINATE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process, getattr(signal, "SIGKILL", signal.SIGTERM))  # what outlived it, such as ensurepip
        process.wait()
    sys.exit(128 + signal.SIGTERM)


def _signal_group(process, signal_number):
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal_number)
        elif process.poll() is None:
            process.terminate()
    except (ProcessLookupError, PermissionError):
        pass


def main(argv=None):
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print(
            "usage: python -m blender_cnn.extract.environment FOLDER (a new virtual environment with TensorFlow)",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _stop)
    return jobs.run_cli(lambda: install(arguments[0]))


if __name__ == "__main__":
    sys.exit(main())
