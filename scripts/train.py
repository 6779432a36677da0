"""Train a preset, a design or a Keras model and save a checkpoint per epoch (and, with --bundle, the bundle).

    python scripts/train.py [--preset P | --model M.keras] [--images FOLDER] [--epochs N]
                            [--run-dir D] [--bundle OUT.bcnn.npz] [--live]

Without --bundle, ``python -m blender_cnn.extract D`` turns the run into a network bundle later.
With --live, every epoch's bundle is written as the epoch finishes, for Blender's Watch Run
(docs/animation.md, "Live training").
"""

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow's C++ start-up chatter hides the few lines this tool prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.core.jobs import one_line  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a network preset, a saved design or a Keras model on a "
        "dataset, saving epoch_000.keras (untrained) to epoch_NNN.keras; "
        "optionally write the bundle of all epochs."
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="preset or saved design JSON (default: presets/digits_cnn.json)")
    source.add_argument(
        "--model",
        help="a Keras model file (.keras) to train, loaded in safe mode; it trains on "
        "--images, or on digits sized to its input",
    )
    parser.add_argument(
        "--images",
        help="a folder with one subfolder of images per class (the class names) to "
        "train on instead of the preset's dataset",
    )
    parser.add_argument("--epochs", type=int, help="number of epochs (default: the preset's, 8 for --model)")
    parser.add_argument("--run-dir", help="output folder (default: runs/<preset or model name>)")
    parser.add_argument(
        "--bundle", help="after training, also write the bundle of every epoch to this file (.bcnn.npz)"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="live training: after every epoch, write the bundle of the epochs so far into the run folder "
        "(live.json, live/) for Blender's Watch Run (CNN tab), which shows each epoch as it finishes; "
        "trains even when the folder holds this run finished",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        # Imported here, so a usage error answers without loading TensorFlow.
        from blender_cnn.extract.keras_bundle import extract_run
        from blender_cnn.extract.live import live_callback
        from blender_cnn.extract.training import train_model, train_run

        live = live_callback if args.live else None
        preset = args.preset or os.path.join(REPO, "presets", "digits_cnn.json")
        run_dir = args.run_dir or os.path.join("runs", _stem(args.model or preset))
        if args.live:
            print(f"live: watch {os.path.abspath(run_dir)} in Blender (CNN tab > Watch Run)", flush=True)
        if args.model:
            train_model(args.model, run_dir, epochs=args.epochs, images=args.images, live=live)
        else:
            train_run(preset, run_dir, epochs=args.epochs, images=args.images, live=live)
        if args.bundle:
            extract_run(run_dir, args.bundle)
    except BlenderCNNError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - started:.1f} s: {args.bundle or run_dir}")
    return 0


def _stem(path):
    name = os.path.basename(os.path.normpath(path))
    return name.split(".")[0] or "run"


if __name__ == "__main__":
    sys.exit(main())
