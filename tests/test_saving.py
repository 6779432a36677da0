"""Where the project saves a .blend itself (the demo that `make demo` and `make video` run, the benchmarks), it
leaves no .blend1 backup beside it, and the user's preferences as they were."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.bpy
REPO = Path(__file__).resolve().parent.parent


def test_saving_again_leaves_no_blend1_and_keeps_the_preferences(blender, tmp_path):
    from blender_cnn.scene.saving import save_without_backup

    preferences = blender.context.preferences
    versions = preferences.filepaths.save_version
    assert versions > 0, "Blender keeps backups by default: the test would prove nothing"
    dirty = preferences.is_dirty
    blend = tmp_path / "digits_cnn.blend"
    for _run in range(3):
        save_without_backup(blend)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["digits_cnn.blend"]
    assert preferences.filepaths.save_version == versions and preferences.is_dirty == dirty


def test_every_save_of_the_project_goes_through_save_without_backup():
    # The one other save writes a copy under a fresh name for the cluster's workers (scene/cluster_render.py).
    allowed = {Path("blender_cnn/scene/saving.py"), Path("blender_cnn/scene/cluster_render.py")}
    saving = [
        path.relative_to(REPO)
        for folder in ("blender_cnn", "scripts")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"\bsave_(as_)?mainfile\(", path.read_text(encoding="utf-8"))
    ]
    assert set(saving) <= allowed, sorted(set(saving) - allowed)
    for script in ("demo.py", "bench_graphs.py", "bench_scene.py"):
        assert "save_without_backup(" in (REPO / "scripts" / script).read_text(encoding="utf-8"), script
