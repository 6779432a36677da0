"""Packaging: the extension zip is valid for Blender, installs through
Blender's own extension installer into a fresh user folder, enables, and its
import operator builds a scene from a bundle.

Installation runs in a subprocess so that it gets a user folder of its own
and cannot register a second copy of the add-on in the test process.
"""

from __future__ import annotations

import re
import tomllib
import zipfile
from pathlib import Path

import pytest
from ui_recorder import run_in_fresh_blender

REPO_ROOT = Path(__file__).resolve().parent.parent
ADDON_MODULE = "bl_ext.user_default.blender_cnn"
RESULT_MARKER = "PACKAGING_RESULT:"


def test_the_manifest_promises_exactly_the_blenders_ci_tests():
    tested = [re.search(r"^bpy==(\d+)\.(\d+)\.", (REPO_ROOT / "requirements.txt").read_text(), re.M)]
    tested += [
        re.search(r"^bpy==(\d+)\.(\d+)\.", path.read_text(), re.M)
        for path in REPO_ROOT.glob("requirements-blender-*.txt")
    ]
    versions = sorted((int(match[1]), int(match[2])) for match in tested)
    manifest = tomllib.loads((REPO_ROOT / "blender_manifest.toml").read_text())
    lowest, highest = versions[0], versions[-1]
    assert manifest["blender_version_min"] == f"{lowest[0]}.{lowest[1]}.0"
    assert manifest["blender_version_max"] == f"{highest[0]}.{highest[1] + 1}.0"
    readme = (REPO_ROOT / "README.md").read_text()
    for major, minor in versions:
        assert re.search(rf"^\| Blender {major}\.{minor}\b.*\| tested in CI", readme, re.M), (major, minor)


def test_staged_extension_validates(build_extension, tmp_path):
    staged = build_extension.stage_extension(tmp_path / "stage")
    build_extension.validate_extension(staged)


def test_zip_holds_addon_presets_and_license(extension_zip):
    names = set(zipfile.ZipFile(extension_zip).namelist())
    assert {"__init__.py", "blender_manifest.toml", "LICENSE", "assets/node_groups.blend"} <= names
    presets = sorted(p.name for p in (REPO_ROOT / "presets").glob("*.json"))
    assert presets, "the repository has no presets to ship"
    assert {f"presets/{name}" for name in presets} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


# Runs inside a fresh Blender (bpy) process: argv = zip [bundle].
_INSTALL_SCRIPT = r"""
import json, sys
import bpy  # first: it puts Blender's own modules (addon_utils) on sys.path
import addon_utils

zip_path = sys.argv[1]
bundle_path = sys.argv[2] if len(sys.argv) > 2 else None
module = "bl_ext.user_default.blender_cnn"
result = {}

result["install"] = sorted(bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True))
result["extensions_dir"] = bpy.utils.user_resource("EXTENSIONS")
result["enabled"] = module in bpy.context.preferences.addons
result["loaded"] = bool(addon_utils.check(module)[1])

if bundle_path is not None:
    import importlib
    prebuilt = importlib.import_module(module + ".nodes.prebuilt")
    taken = []  # what each call to take the groups from the zip's prebuilt asset returned
    original = prebuilt.append_prebuilt_groups
    prebuilt.append_prebuilt_groups = lambda *args: taken.append(original(*args)) or taken[-1]
    before = set(bpy.context.scene.objects)
    result["import"] = sorted(bpy.ops.bcnn.import_bundle(filepath=bundle_path))
    result["new_objects"] = sorted(o.name for o in set(bpy.context.scene.objects) - before)
    result["groups_from_asset"] = taken
    result["libraries"] = len(bpy.data.libraries)

print("PACKAGING_RESULT:" + json.dumps(result))
"""


def _install_in_fresh_blender(zip_path: Path, user_dir: Path, *extra_args: str) -> dict:
    return run_in_fresh_blender(_INSTALL_SCRIPT, RESULT_MARKER, user_dir, zip_path, *extra_args)


@pytest.mark.bpy
def test_zip_installs_and_enables_in_fresh_user_folder(extension_zip, tmp_path):
    user_dir = tmp_path / "blender_user"
    result = _install_in_fresh_blender(extension_zip, user_dir)
    assert result["install"] == ["FINISHED"]
    assert Path(result["extensions_dir"]).resolve().is_relative_to(user_dir.resolve())
    assert (user_dir / "extensions" / "user_default" / "blender_cnn" / "__init__.py").is_file()
    assert result["enabled"] and result["loaded"], result


@pytest.mark.bpy
def test_installed_addon_imports_bundle(extension_zip, tmp_path, digits_design_bundle):
    # A bundle made without TensorFlow, so that every Blender CI tests installs and uses the extension.
    result = _install_in_fresh_blender(extension_zip, tmp_path / "blender_user", digits_design_bundle.path)
    assert result["enabled"], result
    assert result["import"] == ["FINISHED"]
    assert result["new_objects"], "the import operator added no object to the scene"
    # The shared node groups came from the zip's prebuilt asset, made local: the file links to nothing.
    assert result["groups_from_asset"] == [True] and result["libraries"] == 0, result
