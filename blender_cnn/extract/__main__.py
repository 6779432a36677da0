"""``python -m blender_cnn.extract RUN_DIR [--out FILE]``: write the bundle of a training run."""

import argparse
import os
import sys
import time

# TensorFlow's C++ start-up chatter hides the few lines this tool prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ..core.errors import BlenderCNNError  # noqa: E402
from .keras_bundle import default_bundle_path, extract_run  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m blender_cnn.extract",
        description="Read the epoch_NNN.keras checkpoints and samples of a run folder and write one "
                    "network bundle (.bcnn.npz) with weights, activations and metrics of every epoch.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by scripts/train.py")
    parser.add_argument("--out", metavar="FILE", help="bundle to write (default: RUN_DIR/<name>.bcnn.npz)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        out_path = args.out or default_bundle_path(args.run_dir)
        extract_run(args.run_dir, out_path)
    except BlenderCNNError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - started:.1f} s: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
