# Two entry points, both from a fresh clone:
#   make run   set up the virtualenv, check the system libraries Qt needs, open the app on the demo studies
#   make test  set up the virtualenv and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := .demo/CBIS-DDSM

.PHONY: run test setup demo demo-weights clean platform-check gpu-check

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build that lies on these machines' disk, so that
# no later step can resolve "torch" to a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

$(DEMO)/.complete: | $(VENV)/.installed
	$(BIN)/bcir demo-data $(DEMO) --patients 6 --seed 7
	touch $@

demo: $(DEMO)/.complete

# Before anything is written: can Qt open a window here? Stops with the one apt-get line that
# installs the system libraries Qt's xcb plugin lacks (README: System packages).
platform-check: setup
	@$(BIN)/python -m app.platform_check

run: setup platform-check demo
	$(BIN)/python main.py $(DEMO)

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -X faulthandler -m pytest -q

# The bundled demo model, reproduced: 80 synthetic patients, the training run the
# shipped weights come from, the calibration of p(malignant) on its validation patients,
# then the held-out evaluation on 30 patients of a seed never trained or tuned on, and the card (see README).
TRAIN_DATA   := .demo/train-synthetic
HELDOUT_DATA := .demo/heldout-synthetic
TRAIN_RUN    := .demo/run-demo
demo-weights: setup
	$(BIN)/bcir demo-data $(TRAIN_DATA) --patients 80 --seed 100 --size full
	$(BIN)/bcir train $(TRAIN_DATA) --out $(TRAIN_RUN) --views CC,MLO --working-spacing 0.4 --tile 256 \
		--micro-batch 16 --batch-size 16 --lr 1e-3 --augment-factor 10 --bf16 --epochs 6 --device cpu --seed 0
	$(BIN)/bcir calibrate $(TRAIN_DATA) --weights $(TRAIN_RUN)/best.safetensors --out $(TRAIN_RUN)/calibrated.safetensors \
		--views CC,MLO
	$(BIN)/bcir demo-data $(HELDOUT_DATA) --patients 30 --seed 9001 --size full
	$(BIN)/bcir eval $(HELDOUT_DATA) --weights $(TRAIN_RUN)/calibrated.safetensors --report $(TRAIN_RUN)/report --json \
		> $(TRAIN_RUN)/eval.json
	$(BIN)/python -m model.registry.bundle $(TRAIN_RUN) $(TRAIN_RUN)/eval.json resources/models/bcir-demo-v2.safetensors \
		bcir-demo-v2 --model $(TRAIN_RUN)/calibrated.safetensors \
		--held-out "30 synthetic patients from bcir demo-data --seed 9001, never trained or tuned on" \
		--data "80 synthetic patients from bcir demo-data --patients 80 --seed 100 --size full, CC and MLO" \
		--recipe "from scratch: 0.4 mm, 256-px tiles, x10, batch 16, lr 1e-3 constant, bf16, 6 epochs; then temperature scaling and Youden's J on the validation patients"

# The CUDA path's figures on a machine with a GPU (README: GPU figures): the tests marked gpu, the tile run every way,
# a whole view, training throughput at batch 64, written to gpu-check.json. It runs with a Python whose PyTorch has
# CUDA (GPU_PYTHON): the virtualenv's is the CPU build, so this target does not set it up.
GPU_PYTHON ?= python3
gpu-check:
	$(GPU_PYTHON) -m model.cli.gpu_check --out gpu-check.json

clean:
	rm -rf $(VENV) .demo
