# lltune: build the collection, scan, test, bench. The README's two commands are
# `make scan` (scan this host and the shipped sample tree through ansible-playbook) and
# `make test` (every test). Both install what they need: cargo builds, ansible-core comes
# from the package registry into .venv (make scan) or the cargo target folder (tests).

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

# One pin for the Makefile and the tests (tests/support/mod.rs reads the same file).
ANSIBLE_CORE_PIN := tests/ansible-core.pin
ANSIBLE_CORE_VERSION := $(shell sed -n 's/^ansible-core==//p' $(ANSIBLE_CORE_PIN))
VENV := .venv
VENV_STAMP := $(VENV)/.ansible-core-$(ANSIBLE_CORE_VERSION)

COLLECTIONS := build/collections
COLLECTION := $(COLLECTIONS)/ansible_collections/lltune/tuning
# Every module is documented by a sidecar plugins/modules/<module>.yml; its binary has the
# same name. A new module is picked up by adding its sidecar.
MODULES := $(sort $(basename $(notdir $(wildcard ansible/plugins/modules/*.yml))))

# The shipped sample tree (written by `lltune capture`, see docs/capture.md).
SAMPLE_HOST ?= debian12-vm
SAMPLE_ROOT := tests/fixtures/hosts/$(SAMPLE_HOST)

# ansible-core refuses to start without a UTF-8 locale; the collection comes from build/
# only, never from a collection installed elsewhere on this machine.
ANSIBLE_ENV := LC_ALL=C.UTF-8 ANSIBLE_COLLECTIONS_PATH=$(abspath $(COLLECTIONS)) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
PLAYBOOK := $(ANSIBLE_ENV) $(VENV)/bin/ansible-playbook -i localhost, -c local

.PHONY: all collection venv scan test bench clean

all: collection

## collection: release binaries beside their sidecar docs in build/collections/
collection:
	$(CARGO) build --release --bins
	rm -rf $(COLLECTION)
	mkdir -p $(COLLECTION)
	cp -R ansible/. $(COLLECTION)/
	@for m in $(MODULES); do \
	  echo "install $(TARGET_DIR)/release/$$m -> $(COLLECTION)/plugins/modules/$$m"; \
	  install -m 0755 $(TARGET_DIR)/release/$$m $(COLLECTION)/plugins/modules/$$m || exit 1; \
	done

## venv: .venv with the pinned ansible-core
venv: $(VENV_STAMP)

$(VENV_STAMP): $(ANSIBLE_CORE_PIN)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(ANSIBLE_CORE_PIN)
	touch $@

## scan: lltune_facts on this host and on the sample tree, through ansible-playbook
scan: collection venv
	$(PLAYBOOK) ansible/playbooks/facts.yml -e lltune_root=/
	@if [ -d $(SAMPLE_ROOT) ]; then \
	  echo "$(PLAYBOOK) ansible/playbooks/facts.yml -e lltune_root=$(abspath $(SAMPLE_ROOT))"; \
	  $(PLAYBOOK) ansible/playbooks/facts.yml -e lltune_root=$(abspath $(SAMPLE_ROOT)); \
	else \
	  echo "make scan: no sample tree at $(SAMPLE_ROOT); scanned this host only"; \
	fi

## test: every test (the Ansible tests make their own venv)
test:
	@if $(CARGO) fmt --version >/dev/null 2>&1; then $(CARGO) fmt --all -- --check; else echo "rustfmt not installed: format check skipped"; fi
	$(CARGO) test --all-targets

## bench: scan timings against read-every-file and Ansible's setup, their ratio, peak RSS and syscall
## counts, on the real dumps, a synthetic 256-CPU/4,000-IRQ tree (benches/gen-large-irqs.py) and this host
bench: collection venv
	CARGO_TARGET_DIR=$(TARGET_DIR) VENV=$(VENV) COLLECTIONS=$(COLLECTIONS) bash benches/scan.sh

clean:
	rm -rf build
