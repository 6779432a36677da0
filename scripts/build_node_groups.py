"""Build the shared node groups from code into the .blend the add-on takes them from (``nodes/prebuilt.py``).

The extension build runs this (``scripts/build_extension.py``), and so does the scene benchmark; the file is a
build product, never edited by hand, and not in git. Runs in its own Python: it starts Blender (bpy) and resets
the open file.

Usage:  .venv/bin/python scripts/build_node_groups.py [PATH]   (default: blender_cnn/assets/node_groups.blend)
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def build(path: Path | None = None) -> Path:
    """Write the asset in a child Python (so the caller never starts Blender); returns its path."""
    command = [sys.executable, str(Path(__file__).resolve())] + ([str(path)] if path else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    # Blender's user folder is kept out: the user's add-ons and preferences have no say in the groups.
    env.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_groups_"))
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"building the node group asset failed:\n{result.stdout}{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, nargs="?")
    args = parser.parse_args(argv)
    from blender_cnn.nodes import prebuilt

    path = (args.path or prebuilt.ASSET_PATH).resolve()
    prebuilt.write_prebuilt_groups(path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
