"""Train a preset and save a checkpoint per epoch: ``python scripts/train.py [--preset P] [--run-dir D] [--epochs N]``.

Then ``python -m blender_cnn.extract D`` turns the run into a network bundle.
"""

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# TensorFlow's C++ start-up chatter hides the few lines this tool prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.extract.training import train_run  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train a network preset on its dataset, saving "
                                                 "epoch_000.keras (untrained) to epoch_NNN.keras.")
    parser.add_argument("--preset", default=os.path.join(REPO, "presets", "digits_cnn.json"),
                        help="preset JSON (default: presets/digits_cnn.json)")
    parser.add_argument("--run-dir", help="output folder (default: runs/<preset name>)")
    parser.add_argument("--epochs", type=int, help="number of epochs (default: the preset's)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        run_dir = args.run_dir or os.path.join(
            "runs", os.path.splitext(os.path.basename(args.preset))[0])
        train_run(args.preset, run_dir, epochs=args.epochs)
    except BlenderCNNError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - started:.1f} s: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
