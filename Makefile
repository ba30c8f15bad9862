# Two entry points (see README): `make demo` runs the main job, `make test` the test suite.
# Both create or reuse a virtualenv in .venv and install tft_lite with what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.py tft_lite/io/_codec.c tft_lite/kernels/_lookup.c
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[beam,test,torch]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) pipelines/housing.py --output output/housing

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/bench_codec.py

clean:
	rm -rf build output *.egg-info tft_lite/io/*.so
