# The two commands README promises on a fresh machine:
#   make demo   set up .venv and restore the bundled sample photos with the bundled model
#   make test   set up .venv (with test extras) and run the whole test suite
SHARED ?= $(abspath ../shared)
VENV   ?= .venv
export MPCNET_WEIGHTS_DIR ?= $(SHARED)/weights

.PHONY: setup demo test
setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/mpcnet restore $(SHARED)/data/codeformer-inputs/whole_imgs -o results/demo --overwrite

test:
	bash scripts/setup.sh test
	$(VENV)/bin/python -m pytest

# pseudo parsing labels (dlib 68 landmarks) for every face of the face pool: make labels [POOL=dir]
POOL ?= datasets/face_pool
.PHONY: labels
labels: setup
	$(VENV)/bin/python scripts/make_parsing_labels.py $(POOL)
