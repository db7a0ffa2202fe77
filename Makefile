# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install the package (scikit-build-core compiles the C++
# core against the faiss-cpu wheel) and then run. `make test-faiss-compat`
# runs the suite again against the other supported faiss release.

VENV ?= .venv
PY := $(VENV)/bin/python
SOURCES := $(shell find csrc pyfaiss_dpq -name '*.cpp' -o -name '*.h' -o -name '*.py') \
           pyproject.toml CMakeLists.txt
# Two compile jobs at most (pip, scikit-build-core and `cmake --build` read it).
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: demo test install dev asan tsan test-faiss-compat clean

# Tests of the C++ core that also run under AddressSanitizer + UBSan.
ASAN_TESTS := tests/test_index.py tests/test_faiss_wrappers.py tests/test_io.py \
              tests/test_validation.py tests/test_guarantees.py $(wildcard tests/test_scan.py) \
              tests/test_ivf.py tests/test_ivf_norm_codes.py

# torch==2.13.0 is the CPU wheel; a looser pin would pull a multi-GB CUDA build.
$(VENV)/.installed: $(SOURCES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q ".[train,bench,dev,distributed]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/pyfaiss-dpq demo

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests

# In-place build for development: the extension lands in pyfaiss_dpq/ and
# `PYTHONPATH=. python ...` uses the source tree. It needs .venv's tools, not
# a fresh install of the package (order-only prerequisite).
dev: | $(VENV)/.installed
	$(VENV)/bin/cmake -S . -B build/dev -DPython_EXECUTABLE=$(abspath $(PY)) \
	    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$(CURDIR)/pyfaiss_dpq
	$(VENV)/bin/cmake --build build/dev -j2

# The C++ core rebuilt with -fsanitize=address,undefined beside the installed
# package, and the core's tests run against it. Python itself is not
# instrumented, so the sanitizer runtime (and libstdc++, for its exception
# interceptor) is preloaded; leak detection is off because CPython keeps
# memory until exit, and the RSS test is skipped because ASan's quarantine
# holds freed memory on purpose.
asan: | $(VENV)/.installed
	$(call sanitized_build,asan,-DDPQ_SANITIZE=ON)
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	PYTHONPATH=$(CURDIR)/build/asan-pkg $(VENV)/bin/pytest -q -s -p no:cacheprovider -m "not rss" $(ASAN_TESTS)

# The C++ core rebuilt with -fsanitize=thread, and the tests that race
# writers and GIL-free searches run against it (run by hand, not by CI). One
# OpenMP thread: the wheel's libgomp is not instrumented, so TSan cannot see
# its barriers; the races under test are between Python threads. No
# suppressions: 2026-12-01 it reported nothing.
TSAN_TESTS := tests/test_index.py::test_search_levels_and_beam_size_change_safely_during_searches \
              tests/test_guarantees.py::test_concurrent_searches_equal_serial \
              tests/test_guarantees.py::test_add_and_remove_concurrent_with_search_are_safe
tsan: | $(VENV)/.installed
	$(call sanitized_build,tsan,-DDPQ_TSAN=ON)
	LD_PRELOAD="$$(gcc -print-file-name=libtsan.so)" OMP_NUM_THREADS=1 \
	TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
	PYTHONPATH=$(CURDIR)/build/tsan-pkg $(VENV)/bin/pytest -q -s -p no:cacheprovider $(TSAN_TESTS)

# $(call sanitized_build,NAME,CMAKE_OPTIONS): the C++ core built in build/NAME
# into a copy of the package in build/NAME-pkg, beside the installed one.
define sanitized_build
	rm -rf build/$(1)-pkg && mkdir -p build/$(1)-pkg
	cp -r pyfaiss_dpq build/$(1)-pkg/ && rm -f build/$(1)-pkg/pyfaiss_dpq/_core*.so
	$(VENV)/bin/cmake -S . -B build/$(1) -DPython_EXECUTABLE=$(abspath $(PY)) $(2) \
	    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$(CURDIR)/build/$(1)-pkg/pyfaiss_dpq > /dev/null
	$(VENV)/bin/cmake --build build/$(1) -j2
endef

# The suite against the other faiss-cpu minor release that csrc/faiss_abi.h
# declares (.venv has the newest one from pyproject.toml's range): a second
# venv holding that faiss, the package compiled against it there (no build
# isolation, so the build sees that faiss and not the newest).
FAISS_COMPAT ?= 1.14.3
COMPAT_VENV ?= .venv-faiss$(FAISS_COMPAT)

$(COMPAT_VENV)/.installed: $(SOURCES)
	test -x $(COMPAT_VENV)/bin/python || python3 -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install -q torch==2.13.0 "faiss-cpu==$(FAISS_COMPAT)" \
	    "scikit-build-core>=0.11" "pybind11>=2.12" "swig>=4.2" "cmake>=3.18"
	$(COMPAT_VENV)/bin/python -m pip install -q --no-build-isolation ".[train,bench,dev]" "faiss-cpu==$(FAISS_COMPAT)"
	touch $@

test-faiss-compat: $(COMPAT_VENV)/.installed
	cd $(COMPAT_VENV) && bin/python -c "import faiss, pyfaiss_dpq; assert faiss.__version__ == '$(FAISS_COMPAT)', faiss.__version__"
	$(COMPAT_VENV)/bin/pytest -q tests

clean:
	rm -rf build dist *.egg-info $(VENV) .venv-faiss* pyfaiss_dpq/_core*.so
