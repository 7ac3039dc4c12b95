# Set-up and everyday targets. `make demo` and `make test` work on a fresh Debian machine as root.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench man clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@missing=""; for pair in fusermount3:fuse3 ip:iproute2 rsync:rsync git:git curl:curl chromium:chromium; do \
		command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

demo: install
	$(VENV)/bin/icloudfs demo

test: install
	$(VENV)/bin/ruff check icloudfs tests bench
	$(VENV)/bin/ruff format --check icloudfs tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest
	# again against an Advanced Data Protection account (every Drive call needs PCS cookies):
	# the suites that sign in and use Drive
	ICLOUDFS_TEST_EMULATOR=adp $(VENV)/bin/pytest -q tests/icloud tests/emulator tests/cli \
		tests/fuse/test_icloud.py tests/reliability/test_offline.py tests/reliability/test_trust_revoked.py \
		tests/ops/test_daemon.py

# The man page, from the argparse parser (never by hand): install it with
#   install -Dm644 build/icloudfs.1 ~/.local/share/man/man1/icloudfs.1
man: install
	@mkdir -p build
	$(VENV)/bin/argparse-manpage --module icloudfs.cli --function build_parser --prog icloudfs \
		--project-name icloudfs --description "iCloud Drive as a local folder" \
		--version "$$($(PY) -c 'import icloudfs; print(icloudfs.__version__)')" --output build/icloudfs.1

bench: install
	$(PY) -m pip install -q -e '.[test,bench]'
	@command -v fio >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio; }
	$(PY) bench/run.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) build *.egg-info
