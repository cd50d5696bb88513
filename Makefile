# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
APT_PKGS := ffmpeg flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k chromium
export HF_HUB_OFFLINE := 1

.PHONY: setup system-deps test test-fast demo bench clean

setup: system-deps $(STAMP)

# Debian packages: FFmpeg's libraries (torchcodec), and the offline TTS engines.
system-deps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing Debian packages: $$missing"; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[models,tts,piper,test]'
	# pyctcdecode 0.5 pins numpy<2 in its metadata but works with numpy 2: install it without deps.
	$(PY) -m pip install -q --no-deps pyctcdecode==0.5.0 pygtrie==2.6.2
	touch $(STAMP)

# Two test processes: most tests are single-threaded Python or wait on subprocesses, so two
# share 2 cores well (7 min 13 s vs 9 min 10 s on this machine); more would mostly add memory.
# Whole files per process (--dist loadfile): every test file passes on its own, in its order.
TEST_WORKERS ?= 2
PYTEST  := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: setup
	$(PYTEST)

# Unit tests only (no real pretrained weights).
test-fast: setup
	$(PYTEST) -m "not slow"

# The real-speech regression set comes from Debian's Asterisk prompt packages (apt-get download):
# make sure the package lists know them.
demo: setup
	@apt-cache show asterisk-core-sounds-en-g722 >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq; }
	$(VENV)/bin/speechft run recipes/medical/recipe.yaml

bench: setup
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf runs data .pytest_cache
