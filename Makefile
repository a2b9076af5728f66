# lumachrome: set-up, demo, tests and benchmarks. Works on a fresh clone, without stdin.
#   make run    - colorize a few sample photos (out/colorized/, out/comparison.png)
#   make test   - run the test suite and execute the notebooks (notebooks/*.ipynb, through nbmake)
#   make bench  - run the benchmarks (Markdown tables on stdout)
#   make photo-model - re-create the shipped `photo` model (v5) from ../shared/data (about 1.5-2 hours on 2 CPU cores with AMX)
#   make photo-hints-model - re-create the shipped `photo-hints` model from the shipped `photo` (about 35 minutes)
#   make thermal-model - train the thermal model on the pretrained encoder (effunet_gen; about 25-45 minutes on 1 thread)
#   make nir-model - train the nir candidate on the pretrained encoder (effunet_gen; not shipped: it misses issue 18's bars, docs/domains.md)
#   make clean  - remove outputs and caches (keeps .venv; `make distclean` removes it too)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lumachrome-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all setup browser run test bench photo-model photo-hints-model thermal-model nir-model photo-model-v4 clean distclean

all: run

setup: $(STAMP) browser

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs when pyproject.toml changes (torch is pinned there to 2.13.0).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Headless Chromium for the browser tests (the `browser` fixture of tests/conftest.py). Installed with
# apt-get only when missing, only as root and non-interactively; never fails the build (those tests skip).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium + chromium-driver with apt-get (for the browser tests)"; \
	  ( export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
	    apt-get install -y -qq --no-install-recommends chromium chromium-driver ) </dev/null >/dev/null 2>&1 \
	  || echo "note: could not install chromium with apt-get; the browser tests will be skipped"; \
	else \
	  echo "note: chromium/chromedriver not found (as root: apt-get install chromium chromium-driver); the browser tests will be skipped"; \
	fi

run: $(STAMP)
	$(PY) scripts/make_samples.py

# The notebooks run with small settings (about 2 minutes on 2 cores), so they never rot.
test: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider tests --nbmake notebooks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# The shipped `photo` model, v5 (its card: src/lumachrome/weights/photo/README.md; docs/photo-model.md, Run 7):
# stage 1 trains a U-Net decoder on the frozen ImageNet EfficientNet-Lite0 encoder, stage 2 unfreezes the
# encoder at a fifth of the learning rate; the export runs at 192 px with flip averaging and its adaptive
# chroma gain is fitted on photos/train (weight chosen on half a of photos/val, confirmed on half b).
# bf16 autocast + channels-last on CPUs with AMX / AVX512-BF16 (about 1.5 hours with 2 threads there).
# Each stage resumes if interrupted (re-run make photo-model); a finished stage is skipped.
SHARED ?= ../shared/data
PHOTO_CF_WEIGHT ?= 0.045
photo-model: $(STAMP)
	test -f .packs/photos128.safetensors || $(VENV)/bin/lumachrome data pack $(SHARED)/photos/train $(SHARED)/photos/extra \
	  -o .packs/photos128.safetensors --size 128
	test -f runs/photo5-frozen/model/model.safetensors || OMP_NUM_THREADS=2 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/photo5-frozen-cpu.yaml $$(test -d runs/photo5-frozen/checkpoints && echo --resume runs/photo5-frozen || echo --overwrite)
	test -f runs/photo5-tune/model/model.safetensors || OMP_NUM_THREADS=2 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/photo5-tune-cpu.yaml $$(test -d runs/photo5-tune/checkpoints && echo --resume runs/photo5-tune || echo --overwrite)
	$(VENV)/bin/lumachrome export runs/photo5-tune -o runs/photo-release --name photo --flip --size 192
	$(VENV)/bin/lumachrome calibrate runs/photo-release --data $(SHARED)/photos/train --cf-weight $(PHOTO_CF_WEIGHT) --stretch 0.3
	@echo "compare, then copy: lumachrome evaluate --model runs/photo-release --data $(SHARED)/photos/val"

# The shipped `photo-hints` model (its card: src/lumachrome/weights/photo-hints/README.md; docs/hints.md): the
# shipped photo v5, frozen, plus hint branches trained with simulated hints (train.regime hints), exported
# with photo's decoding (192 px, flip) and the same adaptive gain fit as photo (without hints it is photo).
# --base photo: its model.safetensors holds only the hint branches; the rest is read from the shipped photo
# (config.json pins the SHA-256 of photo's weights).
photo-hints-model: $(STAMP)
	test -f .packs/photos128.safetensors || $(VENV)/bin/lumachrome data pack $(SHARED)/photos/train $(SHARED)/photos/extra \
	  -o .packs/photos128.safetensors --size 128
	test -f runs/photo5-hints/model/model.safetensors || OMP_NUM_THREADS=2 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/photo5-hints-cpu.yaml $$(test -d runs/photo5-hints/checkpoints && echo --resume runs/photo5-hints || echo --overwrite)
	$(VENV)/bin/lumachrome export runs/photo5-hints -o runs/photo-hints-release --name photo-hints --flip --size 192 --base photo
	$(VENV)/bin/lumachrome calibrate runs/photo-hints-release --data $(SHARED)/photos/train --cf-weight $(PHOTO_CF_WEIGHT) --stretch 0.3
	@echo "compare, then copy: python scripts/hint_sweep.py --model runs/photo-hints-release --data $(SHARED)/photos/val"

# Thermal -> RGB on effunet_gen (docs/domains.md, "Thermal on the pretrained encoder"): the RoadScene packs, a
# 10 % id split of the train pack for training-time validation (the hold-out is only scored at the end),
# stage 1 L1-only from the shipped photo model's weights, stage 2 pix2pix from stage 1; THERMAL_STAGE picks the
# exported stage (l1 or pix2pix). bf16 + channels-last on CPUs with AMX; each stage resumes if interrupted.
THERMAL_STAGE ?= pix2pix
thermal-model: $(STAMP)
	test -f .packs/thermal-train.safetensors || $(VENV)/bin/lumachrome data domain thermal --split train -o .packs/thermal-train.safetensors
	test -f .packs/thermal-holdout.safetensors || $(VENV)/bin/lumachrome data domain thermal --split holdout -o .packs/thermal-holdout.safetensors
	test -f runs/packs/thermal-val.safetensors || $(PY) scripts/split_domain_pack.py .packs/thermal-train.safetensors \
	  --train-out runs/packs/thermal-fit.safetensors --val-out runs/packs/thermal-val.safetensors
	test -f runs/thermal-effgen-l1/model/model.safetensors || OMP_NUM_THREADS=1 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/thermal-effgen.yaml $$(test -d runs/thermal-effgen-l1/checkpoints && echo --resume runs/thermal-effgen-l1 || echo --overwrite)
	test "$(THERMAL_STAGE)" = l1 || test -f runs/thermal-effgen-pix2pix/model/model.safetensors || OMP_NUM_THREADS=1 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/thermal-effgen-pix2pix.yaml $$(test -d runs/thermal-effgen-pix2pix/checkpoints && echo --resume runs/thermal-effgen-pix2pix || echo --overwrite)
	$(VENV)/bin/lumachrome export runs/thermal-effgen-$(THERMAL_STAGE) -o runs/thermal-release --name thermal --inference short_side=128 --half
	@echo "compare, then copy: lumachrome evaluate --model runs/thermal-release --pack .packs/thermal-holdout.safetensors"

# A candidate for the `nir` model (not shipped: no run meets issue 18's bars; docs/domains.md): effunet_gen on the
# pretrained EfficientNet-Lite0 encoder, initialised from the shipped photo model; stage 1 L1-only, stage 2
# pix2pix (small adversarial term, for sharpness). Data: the default nir train pack plus the nirtiles windows
# (every Landsat / rgbn scene and BigEarthNet patch at native resolution); validation on 10 % of the train
# pack's GeoLifeCLEF ids, never the hold-out. Each stage resumes if interrupted; a finished stage is skipped.
nir-model: $(STAMP)
	test -f .packs/nir-train.safetensors || $(VENV)/bin/lumachrome data domain nir --root $(SHARED) --split train \
	  -o .packs/nir-train.safetensors
	test -f .packs/nirtiles-train.safetensors || $(VENV)/bin/lumachrome data domain nir --root $(SHARED) --datasets nirtiles \
	  --split train -o .packs/nirtiles-train.safetensors
	test -f runs/packs/nir-val.safetensors || $(PY) scripts/split_domain_pack.py .packs/nir-train.safetensors \
	  --val-sets geolifeclef --train-out runs/packs/nir-fit.safetensors --val-out runs/packs/nir-val.safetensors
	test -f runs/nir-effgen-l1/model/model.safetensors || OMP_NUM_THREADS=2 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/nir-effgen.yaml $$(test -d runs/nir-effgen-l1/checkpoints && echo --resume runs/nir-effgen-l1 || echo --overwrite)
	test -f runs/nir-effgen-pix2pix/model/model.safetensors || OMP_NUM_THREADS=2 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/nir-effgen-pix2pix.yaml $$(test -d runs/nir-effgen-pix2pix/checkpoints && echo --resume runs/nir-effgen-pix2pix || echo --overwrite)
	$(VENV)/bin/lumachrome export runs/nir-effgen-pix2pix -o runs/nir-release --name nir --inference tile=128 --half
	@echo "compare, then copy: lumachrome evaluate --model runs/nir-release --pack .packs/nir-holdout.safetensors"

# photo v4 (the 1M-parameter U-Net trained from scratch, three stages; about 3.7 hours on 2 cores).
photo-model-v4: $(STAMP)
	test -f .packs/photos96.safetensors || $(VENV)/bin/lumachrome data pack $(SHARED)/photos/train $(SHARED)/photos/extra \
	  -o .packs/photos96.safetensors --size 96
	test -f runs/photo-cpu/model/model.safetensors || OMP_NUM_THREADS=1 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/photo-cpu.yaml $$(test -d runs/photo-cpu/checkpoints && echo --resume runs/photo-cpu || echo --overwrite)
	test -f runs/photo-global/model/model.safetensors || OMP_NUM_THREADS=2 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/photo-global-cpu.yaml $$(test -d runs/photo-global/checkpoints && echo --resume runs/photo-global || echo --overwrite)
	test -f runs/photo-refine/model/model.safetensors || OMP_NUM_THREADS=2 $(VENV)/bin/lumachrome train \
	  --config src/lumachrome/configs/photo-refine-cpu.yaml $$(test -d runs/photo-refine/checkpoints && echo --resume runs/photo-refine || echo --overwrite)
	$(VENV)/bin/lumachrome export runs/photo-refine -o runs/photo-v4-release --name photo --flip --size 144
	$(VENV)/bin/lumachrome calibrate runs/photo-v4-release --data $(SHARED)/photos/train --cf-weight 0.09 --stretch 0.3

clean:
	rm -rf out build dist .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info
