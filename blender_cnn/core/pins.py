"""The package versions the extractor's Python needs, read from the project's requirements files.

``requirements.txt`` and ``requirements-no-deps.txt`` are the one place versions are pinned:
``scripts/setup.sh`` installs them into ``.venv``, and the add-on's Install TensorFlow button
(``extract/environment.py``) installs the extractor's share of them into a Python of its own. The extension
carries both files (``scripts/build_extension.py`` copies them in beside ``__init__.py``); in the repository
they sit beside the package.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .errors import BlenderCNNError

REQUIREMENTS_FILE = "requirements.txt"
# Installed with --no-deps: tf-keras' metadata asks for the full tensorflow wheel (see the file's comment).
NO_DEPS_FILE = "requirements-no-deps.txt"
# What the extractor imports, taken from requirements.txt; every pin of NO_DEPS_FILE is installed too.
# numpy is pinned so the extractor runs on the numpy the tests run on; onnx and onnxruntime read .onnx files;
# distributed extracts a run's epochs on a Dask cluster (the preferences' Dask Cluster).
EXTRACTOR_PACKAGES = ("tensorflow-cpu", "keras", "h5py", "numpy", "onnx", "onnxruntime", "distributed")
# tensorflow-cpu has wheels for Linux and Windows only; on macOS the tensorflow wheel is the CPU build.
PLATFORM_NAMES = {"darwin": {"tensorflow-cpu": "tensorflow"}}

ADDON_ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``tf_keras`` and ``TF-Keras`` are ``tf-keras``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_folder() -> Path:
    """The folder holding the requirements files: the extension's own folder, else the repository's."""
    for folder in (ADDON_ROOT, ADDON_ROOT.parent):
        if (folder / REQUIREMENTS_FILE).is_file() and (folder / NO_DEPS_FILE).is_file():
            return folder
    raise BlenderCNNError(
        str(ADDON_ROOT),
        f"holds no {REQUIREMENTS_FILE} and {NO_DEPS_FILE}, which say the "
        "versions of TensorFlow and Keras to install; reinstall the add-on",
    )


def read_pins(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{normalized name: "name==version"}`` of every ``name==version`` line of a requirements file."""
    pins = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = PIN.match(line.strip())
            if match:
                pins[normalized(match.group(1))] = f"{match.group(1)}=={match.group(2)}"
    return pins


def extractor_requirements(platform: str = sys.platform) -> tuple[list[str], list[str]]:
    """``(requirements, no_deps)``: what the extractor's Python installs normally, and with ``--no-deps``."""
    folder = requirements_folder()
    pins = read_pins(folder / REQUIREMENTS_FILE)
    missing = [name for name in EXTRACTOR_PACKAGES if name not in pins]
    if missing:
        raise BlenderCNNError(str(folder / REQUIREMENTS_FILE), f"pins no version of {', '.join(missing)}")
    renamed = PLATFORM_NAMES.get(platform, {})
    requirements = [
        renamed[name] + pins[name][len(name) :] if name in renamed else pins[name] for name in EXTRACTOR_PACKAGES
    ]
    return requirements, list(read_pins(folder / NO_DEPS_FILE).values())


def pinned(name: str) -> str:
    """``"name==version"`` as requirements.txt pins it, or the bare name when the file cannot be read."""
    try:
        return read_pins(requirements_folder() / REQUIREMENTS_FILE).get(normalized(name), name)
    except (OSError, BlenderCNNError):
        return name
