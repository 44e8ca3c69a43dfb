# Every target installs what it needs into .venv first, so `make demo` and `make test`
# work on a fresh clone. torch is installed pinned and first: an unpinned torch would pull
# gigabytes of CUDA packages.
PY      := .venv/bin/python
STAMP   := .venv/.installed
DEMO    := demo_out
THREADS ?= 1

.PHONY: help install demo test bench bench-accuracy bench-suite bench-covariates bench-intermittent docs lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install gruforecast with its dev tools

demo: $(STAMP)  ## train on sample_data/, predict, write a report into demo_out/
	mkdir -p $(DEMO)
	.venv/bin/gruforecast train sample_data/co2_weekly.csv --target co2 --time-col week \
		--fill interpolate --horizon 52 --seed 0 --threads $(THREADS) --out $(DEMO)/co2.gruf
	.venv/bin/gruforecast predict $(DEMO)/co2.gruf --horizon 52 --out $(DEMO)/co2-forecast.csv
	.venv/bin/gruforecast info $(DEMO)/co2.gruf
	@echo "model:    $(DEMO)/co2.gruf"
	@echo "forecast: $(DEMO)/co2-forecast.csv"
	@echo "report:   $(DEMO)/report.html ($(DEMO)/report.md, $(DEMO)/metrics.json)"

test: $(STAMP)  ## run the whole test suite
	$(PY) -m pytest -q -n 2  # the 2 cores of CI; each worker uses 1 torch thread (conftest)

bench: $(STAMP)  ## GRU speed: FusedGRU against torch.nn.GRU, written to benchmarks/results/
	$(PY) benchmarks/gru.py

bench-accuracy: $(STAMP)  ## M4 hourly and ETTh1 (reads ../shared/data), written to benchmarks/results/
	$(PY) benchmarks/m4_hourly.py --cli
	$(PY) benchmarks/etth1.py

# statsforecast pins an older pandas: the suite gets its own venv, so .venv stays as CI's.
.venv-bench/.installed: pyproject.toml
	test -x .venv-bench/bin/python || python3 -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q torch==2.13.0
	.venv-bench/bin/python -m pip install -q -e ".[bench]"
	touch .venv-bench/.installed

bench-suite: .venv-bench/.installed  ## the development suite: defaults on every set of ../shared/data beside statsforecast
	.venv-bench/bin/python benchmarks/suite.py --threads $(THREADS)

bench-covariates: .venv-bench/.installed  ## covariates with and without, beside MSTL (benchmarks/covariates.py)
	.venv-bench/bin/python benchmarks/covariates.py --threads $(THREADS)

bench-intermittent: $(STAMP)  ## sparse counts drawn from a seed: scores and band sizes (benchmarks/intermittent.py)
	$(PY) benchmarks/intermittent.py --threads $(THREADS)

docs: $(STAMP)  ## regenerate the options table of docs/cli.md from the config fields
	$(PY) -c "from gruforecast.config import update_options_doc; update_options_doc('docs/cli.md')"

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check gruforecast tests benchmarks

clean:  ## remove the venv and demo outputs
	rm -rf .venv .venv-bench $(DEMO)
