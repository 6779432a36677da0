"""``python -m blender_cnn.extract SOURCE [--out FILE] [--architecture FILE] [--samples FILE | --images FILE ...]
[--samples-per-class N] [--float16] [--no-importance] [--dask ADDRESS] [--allow-unsafe]``."""

import argparse
import os
import sys
import time

# TensorFlow's C++ start-up chatter hides the few lines this tool prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ..core.jobs import run_cli  # noqa: E402
from .keras_bundle import default_bundle_path, extract  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m blender_cnn.extract",
        description="Turn a trained Keras/TensorFlow model, or the checkpoints of every epoch of a run, into "
        "one network bundle (.bcnn.npz) with weights, activations and metrics of every epoch. "
        "See docs/importing.md.",
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="a .keras, .h5 or .weights.h5 file, a TensorFlow or TF1 checkpoint (.index), a SavedModel folder, "
        "or a folder of per-epoch checkpoints (e.g. one written by scripts/train.py); docs/importing.md lists "
        "every format",
    )
    parser.add_argument("--out", metavar="FILE", help="bundle to write (default: <name>.bcnn.npz beside SOURCE)")
    parser.add_argument(
        "--architecture",
        metavar="FILE",
        help="the network for weights-only files and checkpoints: a .keras or .h5 model, a Keras 2 SavedModel "
        "folder, a model.to_json() file or a preset",
    )
    parser.add_argument(
        "--samples",
        metavar="FILE",
        help="an .npz with 'inputs' and 'labels' to record activations for "
        "(default: samples.npz beside SOURCE; with none, synthetic test patterns or noise)",
    )
    parser.add_argument(
        "--images",
        metavar="FILE",
        nargs="+",
        help="PNG or JPEG files to record activations for instead of samples; resized and scaled "
        "to the network's input as the run's preprocessing says (else to 0..1), unlabelled",
    )
    parser.add_argument(
        "--samples-per-class",
        metavar="N",
        type=int,
        help="use N samples of every class: from the run's dataset when run.json names one this "
        "tool knows, else from the samples file",
    )
    parser.add_argument(
        "--float16",
        action="store_true",
        help="store activations as float16, halving the bundle (bundle format version 2)",
    )
    parser.add_argument(
        "--no-importance",
        dest="importance",
        action="store_false",
        help="skip the gradient x activation importance of every layer and class (docs/importance.md); "
        "it costs extra backward passes (VGG16 with 4 samples: 82 s instead of 34 s)",
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="compute the epochs on a Dask cluster: local:N (N worker processes here) or a scheduler's address "
        "(tcp://host:8786); the bundle is the same, see docs/scaling.md",
    )
    parser.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="load Lambda layers, which run Python code stored in the file; only for files you trust",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def extract_bundle():
        out_path = args.out or default_bundle_path(args.source)
        extract(
            args.source,
            out_path,
            architecture=args.architecture,
            samples=args.samples,
            allow_unsafe=args.allow_unsafe,
            images=args.images,
            samples_per_class=args.samples_per_class,
            activations_dtype="float16" if args.float16 else "float32",
            importance=args.importance,
            dask=args.dask,
        )
        print(f"done in {time.perf_counter() - started:.1f} s: {out_path}")

    return run_cli(extract_bundle)


if __name__ == "__main__":
    sys.exit(main())
