# nir-colorize: `make demo` and `make test` install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: install demo test test-fast lint format bench ablation clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e .
	$(PY) -m nir_colorize.metrics.lpips_weights --prepare || echo "LPIPS weights not prepared (see README)"
	touch $(STAMP)

demo: install
	$(PY) -m nir_colorize.demo

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m nir_colorize.bench

# make ablation [STUDY=name] [ARGS="trainer.max_epochs=3 data.batch_size=4"]: the five variants, then the report
STUDY ?= ablation
ARGS ?=
ABLATION := ablation_scd,ablation_linknet,ablation_acd,ablation_colornet,ablation_colornet_bfwls
ablation: install
	$(PY) -m nir_colorize.train -m +experiment=$(ABLATION) study=$(STUDY) $(ARGS)
	$(PY) -m nir_colorize.report --study $(STUDY)

clean:
	rm -rf logs outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
