"""A design (or preset) saved as a Keras model file, from Python, the command line or as a background job.

``export_keras`` checks the design with ``core.design.validate_design`` (one
error listing every problem), puts it in preset order (``sorted_design``),
builds it with ``keras_models.build_model`` and saves it in Keras 3's native
``.keras`` format. Presets hold no Lambda layers, so the file loads with
``keras.saving.load_model(path, safe_mode=True)``.

With a ``seed`` the model gets the design's random weights
(``core.design.random_weights``): the exported model computes what the
designed scene shows (``design_bundle`` with the same seed). With
``seed=None`` it keeps Keras' own random initial weights.

``start_export`` runs it as a ``core.jobs`` job (in this Python when it has
TensorFlow, else in another one through this module's CLI)::

    python -m blender_cnn.extract.export DESIGN.json OUT.keras [--seed N | --keras-initial-weights]
"""

import os
import sys

from ..core import jobs
from ..core.design import design_and_where, random_weights, sorted_design, validate_design
from ..core.errors import BlenderCNNError
from ..core.presets import check_preset
from .keras_models import build_model

KERAS_SUFFIX = ".keras"


def export_keras(design, path, seed=0, log=None):
    """Save ``design`` (a dict, or the path of a design or preset JSON file) as a ``.keras`` model at ``path``.

    Returns ``path``. Raises BlenderCNNError when the design is invalid (the
    reasons listed), ``path`` does not end in ``.keras`` or cannot be written.
    """
    design, where = design_and_where(design)
    path = check_keras_path(path)
    validate_design(design, where)
    preset = check_preset(sorted_design(design), where=where)
    model = build_model(preset)
    if seed is not None:
        set_design_weights(model, random_weights(design, seed), where)
    # Built, the optimizer saves all its (zero) variables, and loading the file does not warn of missing ones.
    model.optimizer.build(model.trainable_variables)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        model.save(path)
    except OSError as error:
        raise BlenderCNNError(path, f"cannot be written ({error.strerror or error})") from None
    if log:
        log(
            f"wrote {path}: {preset['name']!r}, {model.count_params()} parameters, "
            f"{'design weights of seed ' + str(seed) if seed is not None else 'Keras initial weights'}"
        )
    return path


def check_keras_path(path):
    """``path`` as a string; BlenderCNNError unless it names a ``.keras`` file."""
    path = os.fspath(path)
    if not path.lower().endswith(KERAS_SUFFIX):
        raise BlenderCNNError(path, f"a Keras model file must end in {KERAS_SUFFIX}")
    return path


def set_design_weights(model, weights, where="design"):
    """Give the layers of ``model`` the arrays ``{layer name: {weight name: array}}`` (as ``random_weights``)."""
    from .keras_graph import named_weights

    for layer in model.layers:
        arrays = weights.get(layer.name, {})
        named = named_weights(layer)
        if {name for name, _ in named} != set(arrays):
            raise BlenderCNNError(
                where,
                f"layer {layer.name!r}: Keras holds weights {[name for name, _ in named]}, the design {sorted(arrays)}",
            )
        for name, variable in named:
            if tuple(variable.shape) != tuple(arrays[name].shape):
                raise BlenderCNNError(
                    where,
                    f"layer {layer.name!r}: weight {name!r} is {tuple(variable.shape)} "
                    f"in Keras, {tuple(arrays[name].shape)} in the design",
                )
            variable.assign(arrays[name])


def start_export(design, path, seed=0, python_path="", in_process=None):
    """Start exporting ``design`` (a dict) to ``path`` as a ``core.jobs`` job; its ``result_path`` is ``path``.

    The design and the path are checked first, so a bad one raises
    BlenderCNNError before any job starts.
    """
    design, where = design_and_where(design)
    path = os.path.abspath(check_keras_path(path))
    validate_design(design, where)
    weights = ["--keras-initial-weights"] if seed is None else ["--seed", str(int(seed))]
    task = jobs.Task(
        "Exporting",
        where,
        path,
        run=lambda out_path, log, _should_stop: export_keras(design, out_path, seed, log=log),
        command=lambda out_path: jobs.module_command("extract.export", jobs.DESIGN_FILE, out_path, *weights),
        inputs=jobs.design_input(design),
    )
    return jobs.start_job(task, python_path, in_process)


def main(argv=None):
    parser = jobs.design_cli(
        "extract.export",
        "Save a design or preset (JSON) as a Keras model file (.keras) that loads in safe mode. See docs/designing.md.",
        "out",
        "the Keras model file to write (.keras)",
    )
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the seed of the design's random weights, as the designer's Build Scene uses (default 0)",
    )
    weights.add_argument(
        "--keras-initial-weights",
        action="store_true",
        help="keep Keras' own random initial weights instead of the design's",
    )
    args = parser.parse_args(argv)
    return jobs.run_cli(
        lambda: export_keras(args.design, args.out, None if args.keras_initial_weights else args.seed, log=print)
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
