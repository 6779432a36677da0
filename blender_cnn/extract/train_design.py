"""Train a design for N epochs and turn its run into a bundle: one job, from Blender or the command line.

    python -m blender_cnn.extract.train_design DESIGN.json RUN_DIR [--epochs N] [--images FOLDER] [--seed N]

writes the run folder (``training.train_run``: ``epoch_000.keras`` untrained,
then one checkpoint per epoch) and its bundle ``RUN_DIR/<RUN_DIR name>.bcnn.npz``
(``keras_bundle.extract_run``). It prints an ``epoch N:`` line per epoch
trained and per checkpoint extracted, and ``stage: Extracting`` between
the two, which ``core.jobs`` jobs show as progress.

``start_training`` runs it as a ``core.jobs`` job whose output is the whole run
folder: it appears, bundle and all, only when both stages are done.
"""

import os
import sys

from ..core import jobs
from ..core.bundle import FILE_SUFFIX
from ..core.design import design_and_where, validate_design
from ..core.errors import BlenderCNNError
from ..core.presets import TRAINING_DEFAULTS, load_design
from .training import CHECKPOINT_PATTERN, with_epochs

RUN_FILES = ("run.json", "history.json", "history.csv", "samples.npz")


def run_bundle_path(run_dir):
    """The bundle of a trained design's run: ``RUN_DIR/<RUN_DIR name>.bcnn.npz``."""
    run_dir = os.fspath(run_dir)
    return os.path.join(run_dir, os.path.basename(os.path.normpath(run_dir)) + FILE_SUFFIX)


def train_design(design, run_dir, epochs=None, images=None, seed=None, log=print):
    """Train ``design`` (a dict) into ``run_dir`` and write its bundle; returns the bundle's path.

    ``epochs``, ``images`` and ``seed`` are ``training.train_run``'s
    ``epochs``, ``images`` and ``design_seed``.
    """
    from .keras_bundle import extract_run
    from .training import train_run

    train_run(design, run_dir, epochs=epochs, log=log, images=images, design_seed=seed)
    log(f"{jobs.STAGE_PREFIX}Extracting")
    return extract_run(run_dir, run_bundle_path(run_dir), log=log)


def check_run_folder(run_dir):
    """Refuse a folder that holds anything but a run: training there replaces the folder whole."""
    run_dir = os.fspath(run_dir)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise BlenderCNNError(run_dir, "is a file, not a run folder")
    if not os.path.isdir(run_dir):
        return
    names = os.listdir(run_dir)
    is_run = any(CHECKPOINT_PATTERN.match(name) or name in RUN_FILES for name in names)
    if names and not is_run:
        raise BlenderCNNError(
            run_dir,
            "holds files that are not a training run, and training replaces the "
            "run folder whole; choose a new or empty folder",
        )


def training_epochs(design, epochs=None):
    """The epochs a design trains for: ``epochs`` (checked), else its ``training.epochs``, else the default."""
    training = design.get("training") if isinstance(design.get("training"), dict) else {}
    return with_epochs({**TRAINING_DEFAULTS, **training}, epochs)["epochs"]


def start_training(design, run_dir, epochs=None, images=None, seed=None, python_path="", in_process=None):
    """Start training ``design`` (a dict) into ``run_dir`` and extracting its bundle, as a ``core.jobs`` job.

    The job's ``bundle_path`` is ``run_bundle_path(run_dir)``. An existing
    run in ``run_dir`` is replaced when the new one is complete; cancelling
    or failing leaves it as it was. The design, epochs, image folder and run
    folder are checked first, so a bad one raises BlenderCNNError before any
    job starts.
    """
    design, where = design_and_where(design)
    validate_design(design, where)
    # Relative to this process' folder, as the thread would take it; the CLI runs in its work folder.
    design = with_absolute_dataset(design, os.getcwd())
    epoch_count = training_epochs(design, epochs)
    if images is not None:
        images = os.path.abspath(os.fspath(images))
        if not os.path.isdir(images):
            raise BlenderCNNError(images, "no such image folder")
    run_dir = os.path.abspath(os.fspath(run_dir))
    check_run_folder(run_dir)
    options = []
    if epochs is not None:
        options += ["--epochs", str(epochs)]
    if images is not None:
        options += ["--images", images]
    if seed is not None:
        options += ["--seed", str(int(seed))]
    task = jobs.Task(
        "Training",
        where,
        run_dir,
        run=lambda out_path, log, _should_stop: train_design(design, out_path, epochs, images, seed, log),
        command=lambda out_path: jobs.module_command("extract.train_design", jobs.DESIGN_FILE, out_path, *options),
        # Each epoch is printed twice: once trained, once extracted; epoch 0 is the untrained network.
        progress_total=2 * (epoch_count + 1),
        result=os.path.basename(run_bundle_path(run_dir)),
        inputs=jobs.design_input(design),
    )
    return jobs.start_job(task, python_path, in_process)


def with_absolute_dataset(design, base_dir):
    """``design`` with the image folder its training section names (if any) taken against ``base_dir``."""
    from .datasets import resolve_dataset

    training = design.get("training") if isinstance(design, dict) else None
    if not isinstance(training, dict) or not isinstance(training.get("dataset"), dict):
        return design
    return {**design, "training": {**training, "dataset": resolve_dataset(training["dataset"], base_dir)}}


def main(argv=None):
    parser = jobs.design_cli(
        "extract.train_design",
        "Train a design or preset (JSON) and write its run folder and the bundle of every epoch "
        "(RUN_DIR/<RUN_DIR name>.bcnn.npz). See docs/designing.md.",
        "run_dir",
        "the run folder to write",
    )
    parser.add_argument("--epochs", type=int, help="epochs to train (default: the design's training.epochs)")
    parser.add_argument(
        "--images",
        metavar="FOLDER",
        help="a folder with one subfolder of images per class to train on, instead of the design's training.dataset",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="start from the design's random weights of this seed (what the designer's Build "
        "Scene shows) instead of Keras' initial weights",
    )
    args = parser.parse_args(argv)

    def train():
        design = with_absolute_dataset(load_design(args.design), os.path.dirname(os.path.abspath(args.design)))
        print(f"done: {train_design(design, args.run_dir, args.epochs, args.images, args.seed)}")

    return jobs.run_cli(train)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
