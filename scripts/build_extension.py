"""Build the Blender extension zip for blender_cnn.

The add-on source lives in ``blender_cnn/`` while its manifest, presets,
licence and requirements files (the pins Install TensorFlow installs) sit at
the repository top, so they are first staged together into one
folder (``build/extension/`` by default), with the shared node groups built into
``assets/node_groups.blend`` (``scripts/build_node_groups.py``), which is then validated and packed
by Blender's own extension tool, ``blender_ext.py``, shipped in the bpy wheel.
That tool is the same code ``blender --command extension build`` runs, so no
Blender binary is needed.

Usage:  .venv/bin/python scripts/build_extension.py [--output-dir dist]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ADDON_SOURCE = REPO_ROOT / "blender_cnn"
MANIFEST = REPO_ROOT / "blender_manifest.toml"
PRESETS = REPO_ROOT / "presets"
LICENSE = REPO_ROOT / "LICENSE"
# The pinned versions the add-on's Install TensorFlow installs (blender_cnn/core/pins.py reads them).
REQUIREMENTS = (REPO_ROOT / "requirements.txt", REPO_ROOT / "requirements-no-deps.txt")
DEFAULT_STAGE_DIR = REPO_ROOT / "build" / "extension"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "dist"

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class ExtensionBuildError(RuntimeError):
    pass


def _bpy_scripts_dir() -> Path:
    # find_spec locates the wheel without importing bpy (which starts Blender).
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise ExtensionBuildError(
            f"bpy is not importable from {sys.executable}; run this with the project's .venv/bin/python"
        )
    candidates = sorted(Path(spec.origin).parent.glob("[0-9]*.[0-9]*/scripts"))
    if not candidates:
        raise ExtensionBuildError(f"no Blender scripts folder inside {Path(spec.origin).parent}")
    return candidates[-1]


def blender_ext_tool() -> Path:
    """Path of Blender's extension command line tool inside the bpy wheel."""
    return _bpy_scripts_dir() / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def blender_valid_tags() -> Path:
    """The tag list Blender itself validates against (blender_ext.py alone checks none)."""
    return _bpy_scripts_dir() / "modules" / "_bpy_internal" / "extensions" / "tags.py"


def _run_blender_ext(*args: str) -> str:
    command = [sys.executable, str(blender_ext_tool()), *args]
    result = subprocess.run(command, capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise ExtensionBuildError(f"blender_ext.py {args[0]} failed:\n{output}")
    return output


def stage_extension(stage_dir: Path = DEFAULT_STAGE_DIR) -> Path:
    """Assemble the add-on, manifest, presets, licence and requirements files into ``stage_dir`` (replaced)."""
    stage_dir = Path(stage_dir)
    if not (ADDON_SOURCE / "__init__.py").is_file():
        raise ExtensionBuildError(f"{ADDON_SOURCE / '__init__.py'} is missing; the add-on has no entry point")
    _build_web_viewer()
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(ADDON_SOURCE, stage_dir, ignore=_IGNORED)
    shutil.copy2(MANIFEST, stage_dir / MANIFEST.name)
    shutil.copy2(LICENSE, stage_dir / LICENSE.name)
    for requirements in REQUIREMENTS:
        shutil.copy2(requirements, stage_dir / requirements.name)
    if PRESETS.is_dir():
        shutil.copytree(PRESETS, stage_dir / "presets", ignore=_IGNORED, dirs_exist_ok=True)
    _build_node_groups(stage_dir / "assets" / "node_groups.blend")
    return stage_dir


def _build_node_groups(path: Path) -> None:
    """The shared node groups, built from the add-on's code into the .blend a new file takes them from
    (blender_cnn/nodes/prebuilt.py), so the zip never carries groups older than its code."""
    spec = importlib.util.spec_from_file_location("build_node_groups", REPO_ROOT / "scripts" / "build_node_groups.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.build(path)
    except RuntimeError as error:
        raise ExtensionBuildError(str(error)) from error


def _build_web_viewer() -> None:
    """Export for Web's page script (blender_cnn/web/viewer.js, not in git): rebuilt from the pinned npm packages
    when its sources changed, so the zip always carries it and exporting never downloads anything."""
    spec = importlib.util.spec_from_file_location("build_web_viewer", REPO_ROOT / "scripts" / "build_web_viewer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.build(log=lambda _message: None)
    except module.WebViewerBuildError as error:
        raise ExtensionBuildError(str(error)) from error


def validate_extension(path: Path) -> str:
    """Run Blender's validator on a staged folder or a built zip; returns its report."""
    return _run_blender_ext("validate", "--valid-tags", str(blender_valid_tags()), str(path))


def expected_zip_name(manifest: Path = MANIFEST) -> str:
    with open(manifest, "rb") as fh:
        data = tomllib.load(fh)
    return f"{data['id']}-{data['version']}.zip"


def build_extension(out_dir: Path = DEFAULT_OUTPUT_DIR, stage_dir: Path = DEFAULT_STAGE_DIR) -> Path:
    """Stage, validate and pack the extension; returns the path of the zip in ``out_dir``."""
    out_dir = Path(out_dir)
    staged = stage_extension(stage_dir)
    validate_extension(staged)
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / expected_zip_name(staged / MANIFEST.name)
    _run_blender_ext(
        "build",
        "--source-dir",
        str(staged),
        "--output-dir",
        str(out_dir),
        "--valid-tags",
        str(blender_valid_tags()),
    )
    if not zip_path.is_file():
        raise ExtensionBuildError(f"blender_ext.py build reported success but {zip_path} does not exist")
    validate_extension(zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--stage-dir", type=Path, default=DEFAULT_STAGE_DIR)
    args = parser.parse_args(argv)
    try:
        zip_path = build_extension(args.output_dir, args.stage_dir)
    except ExtensionBuildError as error:
        print(f"build_extension: {error}", file=sys.stderr)
        return 1
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
