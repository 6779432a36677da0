# Every target that runs project code first runs scripts/setup.sh, which is
# idempotent and quick when nothing changed, so a fresh clone needs only
# `make <target>`.

PYTHON := .venv/bin/python
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k packaging -x"`.
PYTEST_ARGS ?=

.PHONY: setup demo video lint test test-fast test-other-blenders bench extension clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) scripts/demo.py

# The demo network training, as a short MP4 (after `make demo` made its bundle).
video: demo
	$(PYTHON) scripts/render.py --bundle runs/digits_cnn/digits_cnn.bcnn.npz --sample 3 --animate-epochs \
		--frames-per-epoch 8 --hold 4 --width 640 --height 360 --samples 12 --video --output out/demo/training.mp4

# What CI checks before the tests: formatting, lint and types (configured in pyproject.toml).
lint: setup
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

# -ra lists why tests were skipped (e.g. Eevee without EGL) or xfailed. The tests run in one process per core
# (pytest-xdist), a test file at a time each, so a file's fixtures are made once; PYTEST_WORKERS=0 runs them here.
PYTEST_WORKERS ?= auto
PYTEST := -m pytest tests -q -ra -n $(PYTEST_WORKERS) --dist loadfile
test: setup
	$(PYTHON) $(PYTEST) $(PYTEST_ARGS)

# The tier without TensorFlow (tests not marked tf), with importing TensorFlow, Keras or tf_keras made to fail.
test-fast: setup
	BCNN_BLOCK_TENSORFLOW=1 $(PYTHON) $(PYTEST) -m "not tf" $(PYTEST_ARGS)

# The tier without TensorFlow on every other Blender tested (README, "Supported Blender versions"): one
# requirements-blender-VERSION.txt each, installed by `scripts/setup.sh --blender VERSION` into .venv-blender-VERSION.
OTHER_BLENDERS := $(patsubst requirements-blender-%.txt,%,$(wildcard requirements-blender-*.txt))
test-other-blenders: setup
	set -e; for version in $(OTHER_BLENDERS); do \
		bash scripts/setup.sh --blender $$version; \
		echo "tests on Blender $$version"; \
		BCNN_BLOCK_TENSORFLOW=1 .venv-blender-$$version/bin/python $(PYTEST) -m "not tf" $(PYTEST_ARGS); \
	done

# Every section of docs/BENCHMARKS.md, rewritten whole (about 30-40 min on an idle 2-core machine; run it on a
# quiet one). `make bench BENCH_ARGS="--only scene"` reruns some sections, BENCH_ARGS=--smoke checks they run.
BENCH_ARGS ?=
bench: setup
	$(PYTHON) scripts/bench.py $(BENCH_ARGS)

extension: setup
	$(PYTHON) scripts/build_extension.py --output-dir dist

clean:
	rm -rf build dist .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
