# The two commands README promises on a fresh machine:
#   make demo   set up .venv and restore the bundled sample photos with the bundled model
#   make test   set up .venv (with test extras), run ruff (pyproject.toml's [tool.ruff]), then the whole test suite
#               on one pytest-xdist worker per core, each test file on one worker (tests/conftest.py: one thread each)
#   make pool   build the training face pool from ../shared/data into $(POOL) (scripts/build_face_pool.py)
#   make labels pseudo parsing labels for the faces of the pool in $(POOL) (scripts/make_parsing_labels.py)
#   make mutation  mutmut on the core modules against their fast tests, then the kill rate per module
#                  (CONTRIBUTING.md); MUTANTS='mpcnet.metrics.pixel*' limits it to one module
SHARED ?= $(abspath ../shared)
VENV   ?= .venv
POOL   ?= datasets/face_pool
export MPCNET_WEIGHTS_DIR ?= $(SHARED)/weights

.PHONY: setup demo test pool labels mutation
setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/mpcnet restore $(SHARED)/data/codeformer-inputs/whole_imgs -o results/demo --overwrite --save-comparison

test:
	bash scripts/setup.sh test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -n auto --dist loadfile

mutation:
	bash scripts/setup.sh test
	rm -rf mutants
	MPCNET_SHARED=$(SHARED) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 $(VENV)/bin/mutmut run --max-children 1 $(MUTANTS)
	$(VENV)/bin/python scripts/mutation_report.py

pool: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/python scripts/build_face_pool.py $(SHARED)/data $(POOL)

labels: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/python scripts/make_parsing_labels.py $(POOL)
