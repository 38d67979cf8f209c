# archcast: `make run` sets up and runs the main job on shipped examples; `make test` sets up and tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARCH   ?= |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|

.PHONY: setup system-deps run test bench clean

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

# System packages of the store and web tests (a PostgreSQL server, headless Chromium and its driver),
# installed only when missing; where they cannot be installed those tests skip and say why.
system-deps:
	@need=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$$need postgresql"; \
	command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	command -v chromedriver >/dev/null 2>&1 || need="$$need chromium-driver"; \
	if [ -n "$$need" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo -n"; \
	  echo "installing$$need (apt)"; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$need >/dev/null; } \
	    || echo "could not install$$need: the tests that need them will skip"; \
	fi

test: setup system-deps
	$(PY) -m pytest

# exactly the commands behind the committed tables in docs/benchmarks.md (hours of CPU)
bench: setup
	$(VENV)/bin/archcast bench accuracy --space nb201 --train-size 781 --seeds 5 --tag 781 --out benchmarks/results --overwrite
	$(VENV)/bin/archcast bench accuracy --space nb201 --train-size 1563 --seeds 3 --tag 1563 --out benchmarks/results --overwrite
	$(VENV)/bin/archcast bench accuracy --space nasbench-graph --dataset arxiv citeseer computers cora cs photo physics proteins pubmed \
	  --train-frac 0.05 --seeds 1 --predictors archcast gcn lgbm mlp nnlp --set archcast:ensemble=1 --out benchmarks/results --overwrite
	$(VENV)/bin/archcast bench speed --threads 2 --out benchmarks/results --overwrite
	$(VENV)/bin/archcast bench latency --protocol in-family --seeds 3 --tag in-family --set archcast:ensemble=1 \
	  --set narformer-v2:width=64 --set narformer-v2:fc_hidden=64 --set narformer-v2:epochs=6 --jobs 1 --out benchmarks/results --overwrite
	$(VENV)/bin/archcast bench latency --protocol lofo --seeds 3 --train-cap 40 --tag lofo --set archcast:ensemble=1 \
	  --set narformer-v2:width=64 --set narformer-v2:fc_hidden=64 --set narformer-v2:epochs=6 --jobs 2 --out benchmarks/results --overwrite
	$(VENV)/bin/archcast bench adapt --dataset datasets/ort-cpu-1t-disable --seeds 2 --jobs 1 --set scratch:epochs=60 --out benchmarks/results --overwrite
	$(VENV)/bin/archcast bench latency-speed --out benchmarks/results --overwrite

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
