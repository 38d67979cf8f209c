# archcast: `make run` sets up and runs the main job on shipped examples; `make test` sets up and tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARCH   ?= |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|

.PHONY: setup run test bench clean

setup: $(VENV)/.installed

# torch is installed first and pinned: an open range would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/archcast inspect src/archcast/examples/resnet18.onnx
	$(VENV)/bin/archcast predict src/archcast/examples/resnet18.onnx
	$(VENV)/bin/archcast predict-cell '$(ARCH)'

test: setup
	$(PY) -m pytest

bench: setup
	$(VENV)/bin/archcast bench accuracy --space nb201 --train-size 781 1563 --seeds 5
	$(VENV)/bin/archcast bench speed
	$(VENV)/bin/archcast bench latency --protocol in-family --seeds 3 --tag in-family
	$(VENV)/bin/archcast bench latency --protocol lofo --seeds 3 --train-cap 40 --tag lofo
	$(VENV)/bin/archcast bench latency-speed

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
