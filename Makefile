# Every target that runs project code first runs scripts/setup.sh, which is
# idempotent and quick when nothing changed, so a fresh clone needs only
# `make <target>`.

PYTHON := .venv/bin/python
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k packaging -x"`.
PYTEST_ARGS ?=

.PHONY: setup demo video test bench extension clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) scripts/demo.py

# The demo network training, as a short MP4 (after `make demo` made its bundle).
video: demo
	$(PYTHON) scripts/render.py --bundle runs/digits_cnn/digits_cnn.bcnn.npz --sample 3 --animate-epochs \
		--frames-per-epoch 8 --hold 4 --width 640 --height 360 --samples 12 --video --output out/demo/training.mp4

# -ra lists why tests were skipped (e.g. Eevee without EGL) or xfailed.
test: setup
	$(PYTHON) -m pytest tests -q -ra $(PYTEST_ARGS)

bench: setup
	$(PYTHON) scripts/bench.py

extension: setup
	$(PYTHON) scripts/build_extension.py --output-dir dist

clean:
	rm -rf build dist .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
