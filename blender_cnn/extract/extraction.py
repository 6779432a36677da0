"""Extracting checkpoints into a bundle as a job (``core.jobs``): the user's options, the CLI, the bundle's name.

``start_extraction`` is what File > Import > Network Checkpoint runs: the
extractor (``keras_bundle.extract``) in this Python when what it needs is
importable here (TensorFlow; onnx and onnxruntime for ONNX files), else its
CLI (``python -m <add-on>.extract``) in the Python the preferences name.
Progress counts the checkpoints the source holds.
"""

import hashlib
import os
import re
from dataclasses import dataclass

from ..core import jobs
from ..core.bundle import FILE_SUFFIX
from ..core.errors import BlenderCNNError
from .onnx_files import ONNX_SUFFIX

# What the extractor reads as checkpoints (TensorFlow's by their .index file); for the progress total only.
CHECKPOINT_SUFFIXES = (".keras", ".h5", ".hdf5", ".index", ".onnx")
NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class ExtractionOptions:
    """What the user chose beyond the source; what is left unset, the extractor decides."""

    architecture: str | None = None
    samples: str | None = None
    images: tuple = ()
    samples_per_class: int | None = None
    float16: bool = False
    allow_unsafe: bool = False
    importance: bool = True
    dask: str = ""  # a cluster address to compute the epochs on (docs/scaling.md); "" for this machine

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
        if not self.importance:
            arguments.append("--no-importance")
        if self.dask:
            arguments += ["--dask", self.dask]
        return arguments

    def keyword_arguments(self):
        """The same choices as keyword arguments of ``keras_bundle.extract``."""
        chosen = {
            "architecture": self.architecture,
            "samples": self.samples,
            "images": list(self.images) or None,
            "samples_per_class": self.samples_per_class,
            "allow_unsafe": self.allow_unsafe,
            "activations_dtype": "float16" if self.float16 else None,
            "dask": self.dask,
        }
        chosen = {key: value for key, value in chosen.items() if value}
        return chosen if self.importance else {**chosen, "importance": False}


def extract_arguments(source, out_path, options=None):
    """The extractor's command line after the Python, as an argument list; options the user left unset are
    left out."""
    options = options or ExtractionOptions()
    return jobs.module_command("extract", source, "--out", out_path, *options.command_arguments())


def _checkpoint_group(source):
    """The checkpoint files the extractor will read from ``source``, or None when that is not known.

    In a folder the epochs are the files whose names differ only in a number
    (``epoch_003.keras``); the largest such group is the one the extractor picks.
    """
    source = os.fspath(source)
    if not os.path.isdir(source):
        return [source] if source.lower().endswith(CHECKPOINT_SUFFIXES) else None
    groups = {}
    for name in os.listdir(source):
        if name.lower().endswith(CHECKPOINT_SUFFIXES):
            groups.setdefault(NUMBER.sub("#", name), []).append(name)
    return max(groups.values(), key=len) if groups else None


def expected_epoch_count(source):
    """How many checkpoints the extractor will read from ``source``, or None when that is not known."""
    group = _checkpoint_group(source)
    return len(group) if group else None


def is_onnx_source(source):
    """Whether ``source`` is an ONNX file or a folder of them, which onnxruntime reads instead of TensorFlow."""
    group = _checkpoint_group(source)
    return bool(group) and group[0].lower().endswith(ONNX_SUFFIX)


def bundle_name(source):
    """``<source name>-<hash of its path>.bcnn.npz``: re-importing a source replaces its bundle,
    two runs with the same folder name do not."""
    source = os.path.abspath(os.fspath(source))
    stem = os.path.basename(os.path.normpath(source))
    for suffix in (".weights.h5", *CHECKPOINT_SUFFIXES):
        stem = stem.removesuffix(suffix)
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
    return f"{stem or 'network'}-{digest}{FILE_SUFFIX}"


def run_extractor(source, out_path, options=None, log=print):
    """Call the extractor's Python API in this process (TensorFlow must be importable)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .keras_bundle import extract

    return extract(source, out_path, log=log, **(options or ExtractionOptions()).keyword_arguments())


def start_extraction(source, out_dir, python_path="", options=None, in_process=None):
    """Start extracting ``source`` (a checkpoint file or run folder) into a bundle in ``out_dir``.

    Runs where ``core.jobs.start_job`` says. The job's ``bundle_path`` is
    ``out_dir/bundle_name(source)``.
    """
    source = os.fspath(source)
    # A TensorFlow checkpoint may be named by its prefix (ckpt-5 for ckpt-5.index and its data files).
    if not source or not (os.path.exists(source) or os.path.exists(source + ".index")):
        raise BlenderCNNError(source or "source", "no such checkpoint file or run folder")
    options = options or ExtractionOptions()
    onnx = is_onnx_source(source)
    task = jobs.Task(
        "Extracting",
        source,
        os.path.join(os.fspath(out_dir), bundle_name(source)),
        run=lambda out_path, log, _should_stop: run_extractor(source, out_path, options, log),
        command=lambda out_path: extract_arguments(source, out_path, options),
        progress_total=expected_epoch_count(source),
        starting="starting onnxruntime..." if onnx else jobs.Task.starting,
        needs=jobs.ONNX_RUNTIME if onnx else jobs.TENSORFLOW,
    )
    return jobs.start_job(task, python_path, in_process)
