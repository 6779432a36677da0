"""Every benchmark script runs its whole path on tiny inputs (``--smoke``), so a broken benchmark fails here
and not an hour into `make bench`. Nothing is timed, and nothing is written into docs/.

The scripts run in subprocesses, two at a time (the module's first test starts every selected one), each
writing its report into a temporary BENCHMARKS.md of its own.
"""

import re
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
DOCS_BENCHMARKS = REPO / "docs" / "BENCHMARKS.md"
TIMEOUT = 600  # seconds for one script's smoke run; about 10 to 30 s on an idle machine

pytestmark = [pytest.mark.slow, pytest.mark.bpy]

# script -> its extra arguments; bench.py's smoke run covers its own sections, the other scripts run directly.
SMOKE_ARGUMENTS = {
    "bench.py": ("--only", "demo", "extraction"),
    "bench_scene.py": (),
    "bench_bundling.py": (),
    "bench_animation.py": (),
    "bench_graphs.py": (),
    "bench_onnx.py": (),
    "bench_cluster.py": (),
}
SMOKE_SCRIPTS = [
    pytest.param("bench.py", marks=[pytest.mark.tf, pytest.mark.render]),
    "bench_scene.py",
    "bench_bundling.py",
    pytest.param("bench_animation.py", marks=pytest.mark.render),
    pytest.param("bench_graphs.py", marks=pytest.mark.tf),
    "bench_onnx.py",
    pytest.param("bench_cluster.py", marks=[pytest.mark.tf, pytest.mark.render, pytest.mark.slow]),
]


def section_titles(markdown):
    return re.findall(r"^## (.+?)\s*$", markdown, flags=re.MULTILINE)


class SmokeRuns:
    """Starts each selected script's smoke run at once, two at a time; ``result(script)`` waits for one."""

    def __init__(self, scripts, folder):
        self.folder = folder
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.runs = {script: self.pool.submit(self._run, script) for script in scripts}

    def _run(self, script):
        written = self.folder / script.replace(".py", "") / "BENCHMARKS.md"
        written.parent.mkdir(parents=True)
        command = [
            sys.executable,
            str(SCRIPTS / script),
            "--smoke",
            "--benchmarks",
            str(written),
            *SMOKE_ARGUMENTS[script],
        ]
        process = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
        return process, written.read_text() if written.exists() else ""

    def result(self, script):
        return self.runs[script].result()


@pytest.fixture(scope="module")
def smoke_runs(request, tmp_path_factory):
    selected = {
        item.callspec.params["script"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "script" in item.callspec.params
    }
    docs_before = DOCS_BENCHMARKS.read_bytes()
    runs = SmokeRuns(sorted(selected), tmp_path_factory.mktemp("bench_smoke"))
    yield runs
    runs.pool.shutdown(wait=True)
    assert DOCS_BENCHMARKS.read_bytes() == docs_before, "a smoke run changed docs/BENCHMARKS.md"


@pytest.mark.parametrize("script", SMOKE_SCRIPTS)
def test_each_benchmark_runs_its_whole_path_on_tiny_inputs_and_prints_its_tables(smoke_runs, script):
    process, written = smoke_runs.result(script)
    tail = "\n".join((process.stdout + process.stderr).splitlines()[-40:])
    assert process.returncode == 0, f"{script} --smoke exited with {process.returncode}:\n{tail}"
    titles = section_titles(written)
    assert titles, f"{script} --smoke wrote no section:\n{tail}"
    for title in titles:
        assert f"## {title}" in process.stdout, f"{script} did not print its section {title!r}"
    tables = re.findall(r"^\|---", process.stdout, flags=re.MULTILINE)
    assert len(tables) >= len(titles), f"{script} printed {len(tables)} tables for {len(titles)} sections"
    assert f"written to {DOCS_BENCHMARKS}" not in process.stdout


def test_make_bench_runs_every_bench_script_and_each_has_a_smoke_test():
    sections = runpy.run_path(str(SCRIPTS / "bench.py"), run_name="bench_sections")["SECTIONS"]
    scripts = {path.name for path in SCRIPTS.glob("bench*.py")}
    assert {script for _, script, _ in sections} == scripts
    assert set(SMOKE_ARGUMENTS) == scripts


def test_every_section_of_benchmarks_md_is_written_by_a_bench_script(smoke_runs):
    if set(smoke_runs.runs) != set(SMOKE_ARGUMENTS):
        pytest.skip("needs every bench script's smoke run (some were deselected)")
    written = set()
    for script in SMOKE_ARGUMENTS:
        process, text = smoke_runs.result(script)
        if process.returncode:
            pytest.skip(f"{script} --smoke failed (its own test says why)")
        written.update(section_titles(text))
    assert set(section_titles(DOCS_BENCHMARKS.read_text())) == written
