# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install the package (compiling the C++ core against the
# faiss-cpu wheel) and then run.

VENV ?= .venv
PY := $(VENV)/bin/python
SOURCES := $(shell find csrc pyfaiss_dpq -name '*.cpp' -o -name '*.h' -o -name '*.py') \
           setup.py pyproject.toml CMakeLists.txt

.PHONY: demo test install dev asan clean

$(VENV)/.installed: $(SOURCES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch (a looser pin would pull a multi-GB CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q ".[train,bench,dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/pyfaiss-dpq demo

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests

# In-place build for development: the extension lands in pyfaiss_dpq/ and
# `PYTHONPATH=. python ...` uses the source tree.
dev: $(VENV)/.installed
	$(VENV)/bin/cmake -S . -B build/dev -DPython_EXECUTABLE=$(abspath $(PY)) \
	    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$(CURDIR)/pyfaiss_dpq
	$(VENV)/bin/cmake --build build/dev -j2

clean:
	rm -rf build dist *.egg-info $(VENV) pyfaiss_dpq/_core*.so
