# nir-colorize: `make demo` and `make test` install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline
# the datasets (conf/paths/default.yaml): the development copy beside the repo when there is one, else yours or data/
NIR_COLORIZE_DATA ?= $(wildcard $(abspath ../shared/data))
ifneq ($(NIR_COLORIZE_DATA),)
export NIR_COLORIZE_DATA
endif

.PHONY: install demo test test-fast lint format bench bench-deploy ablation reference gpu-bundle clean app

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e .
	$(PY) -m nir_colorize.offline || echo "offline weights not prepared (see README)"  # LPIPS + VGG16 weights, WLS kernels
	$(PY) -m nir_colorize.offline.bundle wheels --dest .cache/wheels || echo "GPU-bundle wheels not downloaded: tests/test_gpu_bundle.py skips"  # its install test
	touch $(STAMP)

demo: install
	$(PY) -m nir_colorize.demo

# the web page on http://127.0.0.1:7860 (ARGS="--host 0.0.0.0 --port 8080" to share it on your network)
app: install
	$(PY) -m nir_colorize.app $(ARGS)

# two pytest workers per two cores (each on one torch thread, tests/conftest.py): 1.6x faster than one process
test: install
	$(PY) -m pytest -q -n logical --maxprocesses 4

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m nir_colorize.bench
	$(PY) -m nir_colorize.bench.predict --model-id reference --sizes 1024x680,1920x1080,4096x4096 --scales 1,auto
	$(PY) -m nir_colorize.bench.deploy --model-id reference

# make bench-deploy: torch fp32 / torch bf16 + channels_last / onnxruntime, Mpx/s at 1024x680 and 4096x4096 (tiled)
# for the shipped model (experiments/bench/deploy-*); also the last step of make bench
bench-deploy: install
	$(PY) -m nir_colorize.bench.deploy --model-id reference

# make ablation [STUDY=name] [ARGS="trainer.max_epochs=3 data.batch_size=4"]: the five variants, then the report
STUDY ?= ablation
ARGS ?=
ABLATION := ablation_scd,ablation_linknet,ablation_acd,ablation_colornet
ablation: install
	$(PY) -m nir_colorize.train -m +experiment=$(ABLATION) study=$(STUDY) $(ARGS)
	$(PY) -m nir_colorize.report --study $(STUDY)

# make reference [ARGS="data.source.sources.vcip.root=... data.source.sources.scenes.root=..."]: the shipped model
# from scratch in two stages (conf/experiment/reference.yaml: the decoder on the frozen encoder; then
# reference_finetune.yaml: the whole network from stage 1's best weights), then its fp16 export into the run
# directory (not over the shipped one)
reference: RUN := logs/reference/$(shell date +%Y-%m-%d_%H-%M-%S)
reference: install
	$(PY) -m nir_colorize.train +experiment=reference hydra.run.dir=$(RUN)/stage1 $(ARGS)
	$(PY) -m nir_colorize.train +experiment=reference_finetune stage1_ckpt=$(RUN)/stage1/checkpoints/best.ckpt \
		hydra.run.dir=$(RUN)/stage2 $(ARGS)
	$(PY) -m nir_colorize.shipped export $(RUN)/stage2/checkpoints/best.ckpt --id reference --out $(RUN)

# make gpu-bundle [GPU_PY=3.12]: dist/gpu-bundle/, everything a CUDA machine with its own torch and no package
# index needs (README "A fresh CUDA machine"): the pinned wheels its image lacks (for Python GPU_PY, manylinux
# x86_64; needs the index here), the package, configs, shipped model, tests and sample, the LPIPS features, install.py
GPU_PY ?= 3.12
gpu-bundle: install
	rm -rf dist/gpu-bundle
	$(PY) -m nir_colorize.offline.bundle build --out dist/gpu-bundle --python-version $(GPU_PY)

clean:
	rm -rf logs outputs multirun dist .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
