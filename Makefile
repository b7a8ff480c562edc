# Two entry points, both from a fresh clone:
#   make run   set up the virtualenv and open the app on the built-in demo studies
#   make test  set up the virtualenv and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := .demo/CBIS-DDSM

.PHONY: run test setup demo clean

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

run: setup demo
	$(BIN)/python main.py $(DEMO)

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .demo
