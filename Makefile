# worldgen: `make demo` builds a world from a prompt; `make test` runs the full suite.
# Both create .venv and install everything first (system packages too, on Debian/Ubuntu).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# A known-good torch; override for another build, e.g. make install TORCH_SPEC='torch>=2.5'.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_PROMPT ?= a pine forest by a lake at sunset
DEMO_OUT ?= out/demo

.PHONY: install validators blender demo test test-restricted lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) bash tools/system-deps.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "worldgen needs Python >= 3.11 (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q '$(TORCH_SPEC)'
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Node validators for the tests and `worldgen validate`: Khronos gltf-validator, splat-transform.
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json
	@PYTHON=$(PYTHON) bash tools/system-deps.sh --node
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

validators: $(STAMP) $(NODE_STAMP)

# Blender as a Python module for the client tests (tests/test_clients_blender.py). bpy pins
# numpy 1.26 and needs CPython 3.11 (bpy 5.0.x), so it gets its own venv next to .venv.
# About 1 GB installed; measured 62 s from PyPI without a pip cache (2-core EPYC, load ~10).
BLENDER_VENV ?= .venv-blender
BLENDER_PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3.11)
BPY_SPEC ?= bpy==5.0.1
BLENDER_STAMP := $(BLENDER_VENV)/.installed

$(BLENDER_STAMP):
	@$(BLENDER_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "the Blender client tests need CPython 3.11 for $(BPY_SPEC); set BLENDER_PYTHON=/path/to/python3.11" >&2; exit 1; }
	@test -x $(BLENDER_VENV)/bin/python || $(BLENDER_PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/python -m pip install -q '$(BPY_SPEC)'
	@touch $(BLENDER_STAMP)

blender: $(BLENDER_STAMP)

demo: $(STAMP)
	$(VENV)/bin/worldgen generate "$(DEMO_PROMPT)" -o $(DEMO_OUT) --preset fast
	@echo "open $(DEMO_OUT)/world.glb in Blender; $(DEMO_OUT)/panorama.png is the 360° image"

test: $(STAMP) $(NODE_STAMP) $(BLENDER_STAMP) lint
	WORLDGEN_REQUIRE_CLIENTS=1 $(PY) -m pytest -q
	@$(MAKE) --no-print-directory test-restricted

# The tests whose outcome could hang on the last bit of a float, again with numpy's SIMD dispatch
# above its baseline (tools/npy-restricted.py) and glibc's FMA/AVX libm variants switched off:
# a CPU with another instruction set gets those bits (docs/conventions.md, "Determinism").
CPU_SENSITIVE_TESTS ?= tests/test_mesh_sheet.py tests/test_mesh_simplify.py tests/test_mesh_texture.py \
	tests/test_detmath.py tests/test_geometry_equirect.py
test-restricted: $(STAMP)
	NPY_DISABLE_CPU_FEATURES="$$($(PY) tools/npy-restricted.py)" \
	GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F,-AVX,-AVX2_Usable,-FMA_Usable,-AVX_Usable \
	$(PY) -m pytest -q -p no:cacheprovider $(CPU_SENSITIVE_TESTS)

# ruff: lint rules and the formatter's verdict, both configured in pyproject.toml.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(BLENDER_VENV) out .pytest_cache
