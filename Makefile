# Two commands matter: `make demo` (the main job on the synthetic face lab) and `make test`.
# Both create or reuse .venv and install the pinned stack first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LAB_DIR ?= data/face_lab
DEMO_LAB_DIR ?= data/face_lab_32
IDENTITY_LAB_DIR ?= data/identity_lab_32
DEMO_FLAGS ?= configs/lab/demo.flags

.PHONY: venv demo test test-slow test-multi-worker test-all-recipes browser lab identity-lab clean-runs reference-venv install-check

$(STAMP): requirements.lock setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

# Labs are rendered once; delete the folder to render one again.
$(LAB_DIR)/lab.json: | $(STAMP)
	$(PY) scripts/make_synthetic.py --output_dir=$(LAB_DIR) --flagfile=configs/lab/face_lab.flags

$(DEMO_LAB_DIR)/lab.json: | $(STAMP)
	$(PY) scripts/make_synthetic.py --output_dir=$(DEMO_LAB_DIR) --flagfile=configs/lab/face_lab_32.flags

$(IDENTITY_LAB_DIR)/lab.json: | $(STAMP)
	$(PY) scripts/make_synthetic.py --output_dir=$(IDENTITY_LAB_DIR) --flagfile=configs/lab/face_lab_identities.flags

lab: $(LAB_DIR)/lab.json

# The 300-person lab that f, LEGAN's identity network, trains on (configs/lab/identity_lab_300.flags).
identity-lab: $(IDENTITY_LAB_DIR)/lab.json

demo: $(STAMP) $(DEMO_LAB_DIR)/lab.json
	$(PY) scripts/train.py --flagfile=$(DEMO_FLAGS) --export_to=serving/models

# Two workers (pytest-xdist), a test file per worker at a time so a file's fixtures are built once:
# most tests wait on subprocesses and single-threaded Python, so two cores run two files at once.
# -rfEs: the summary lists failures, errors and every skip with its reason. With LEGAN_TF_FAIL_ON_SKIP=1
# (set by .ci/run) a skipped test fails instead (tests/conftest.py). CI (.ci/run) runs both targets: every
# test runs there. `make test` is the fast loop; the tests marked `slow` (kill/resume at random points, every
# recipe's gradients on two replicas, both backends' step, the face lab's learnability, the installed wheel,
# the whole training runs of scripts/train.py under both backends and in mixed precision, the joint-edit
# script's runs) are `make test-slow`. A file whose tests share a costly fixture (a finished run) sits on one
# side, so CI builds the fixture once. The two-worker cluster tests (tests/training/test_multi_worker.py: about
# 3 minutes of 2 cores, cluster start-ups, a preemption) run in `make test-multi-worker`.
test: $(STAMP) browser
	$(PY) -m pytest tests -q -rfEs -n 2 --dist loadfile -m "not slow" --ignore=tests/training/test_multi_worker.py

test-slow: $(STAMP) browser
	$(PY) -m pytest tests -q -rfEs -n 2 --dist loadfile -m slow --ignore=tests/training/test_multi_worker.py

# Every recipe (seven) on a two-worker cluster, StarGAN's resume and preemption (tests/training/test_multi_worker.py).
test-multi-worker: $(STAMP)
	LEGAN_TF_ALL_RECIPES=1 $(PY) -m pytest tests/training/test_multi_worker.py -q -rfEs

# Every recipe (seven) where the tests take a few: on a two-worker cluster, and one step under both backends
# (tests/training/test_backends.py compares three tasks in `make test-slow`).
test-all-recipes: $(STAMP)
	LEGAN_TF_ALL_RECIPES=1 $(PY) -m pytest tests/training/test_multi_worker.py tests/training/test_backends.py \
	  -q -rfEs -n 2 --dist loadfile

# The rating study's browser test (tests/test_rating_study.py) drives Debian's Chromium through its chromedriver.
# Installed here when missing, where this runs as root with apt-get (time-bounded, never fatal); elsewhere
# that one test is skipped and says what is missing (a failure under LEGAN_TF_FAIL_ON_SKIP=1, as in CI).
BROWSER_LOG := $(VENV)/browser-install.log
browser: | $(STAMP)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium and chromium-driver for the browser test (log: $(BROWSER_LOG))"; \
	  { timeout 180 apt-get update -q && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q \
	      -o DPkg::Lock::Timeout=60 --no-install-recommends chromium chromium-driver; } >$(BROWSER_LOG) 2>&1 \
	    || echo "note: chromium and chromium-driver could not be installed (see $(BROWSER_LOG)); the browser test will be skipped (and fail where LEGAN_TF_FAIL_ON_SKIP=1)"; \
	else \
	  echo "note: chromium and chromedriver are missing, and installing them needs root and apt-get; the browser test will be skipped (and fail where LEGAN_TF_FAIL_ON_SKIP=1)"; \
	fi

clean-runs:
	rm -rf runs

# The reference PyTorch StarGAN's own environment, for studies/reference_stargan/run.py only (never imported by legan_tf).
reference-venv: .venv-reference/.installed-stamp

.venv-reference/.installed-stamp:
	@test -x .venv-reference/bin/python || $(PYTHON) -m venv .venv-reference
	.venv-reference/bin/python -m pip install --quiet torch==2.13.0+cpu numpy==2.4.6 || \
	  .venv-reference/bin/python -m pip install --quiet --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu numpy==2.4.6
	@touch $@

# `pip install .` into a bare venv (build/install-check, made anew), then `legan-tf edit` with a shipped model
# on the astronaut photo, run outside the checkout so the installed package is what runs (.ci/run calls it
# after the tests; about 3 minutes, mostly the download or pip cache of the pinned stack).
INSTALL_CHECK := build/install-check
install-check: $(STAMP)
	rm -rf $(INSTALL_CHECK) && $(PYTHON) -m venv $(INSTALL_CHECK)
	$(INSTALL_CHECK)/bin/python -m pip install --quiet .
	$(PY) -c "from skimage import data; from PIL import Image; Image.fromarray(data.astronaut()).save('$(INSTALL_CHECK)/photo.jpg')"
	cd $(INSTALL_CHECK) && bin/python -c "import legan_tf, sys; sys.exit(0 if 'site-packages' in legan_tf.__file__ else 'legan_tf imported from ' + legan_tf.__file__)"
	cd $(INSTALL_CHECK) && bin/legan-tf edit --model=pretrained:stargan-fer2013-64 --input=photo.jpg --expression=happy --output=edited.png 2>/dev/null
	$(PY) -c "import numpy as np; from PIL import Image; a, b = (np.asarray(Image.open('$(INSTALL_CHECK)/' + n)).astype(int) for n in ('photo.jpg', 'edited.png')); ys, xs = np.nonzero((a != b).any(-1)); assert a.shape == b.shape and len(xs) > 100, 'the edit changed nothing'; assert xs.min() > 150 and xs.max() < 300 and ys.min() > 40 and ys.max() < 220, f'pixels changed outside the face: x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()}'; print(f'install-check: legan-tf edit from a bare venv changed {len(xs)} pixels, all within x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()} (the face: 94 px wide at (224, 123))')"
