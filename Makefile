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
# Every pip install passes this constraints file: all packages, transitive ones included, at
# one version (a registry's new release must not change what a clean clone runs).
CONSTRAINTS := tests/python-constraints.txt
PIP_INSTALL = bin/pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS)
VENV := .venv
# The stamp names the pins it was installed from: a changed pin or constraint remakes the venv.
VENV_STAMP := $(VENV)/.stamp-$(shell cat $(ANSIBLE_CORE_PIN) $(CONSTRAINTS) | sha256sum | cut -c1-12)

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

# The shipped binaries (modules and CLI) load on glibc 2.17 and later (RHEL 7 on): they are
# linked by zig against glibc 2.17 (cargo-zigbuild, target triple suffixed with the glibc
# version). Both tools come from the package registry into $(ZIG_VENV), pinned in
# $(ZIG_PIN). scripts/check_binaries.py then refuses a binary that needs a newer GLIBC_
# symbol, or a module binary over its size budget (Ansible copies it to every host for every task).
GLIBC := 2.17
TRIPLE := $(shell uname -m)-unknown-linux-gnu
ZIG_PIN := scripts/zigbuild.pin
ZIG_VENV := .venv-tools
ZIG_STAMP := $(ZIG_VENV)/.stamp-$(shell cat $(ZIG_PIN) $(CONSTRAINTS) | sha256sum | cut -c1-12)
SHIPPED := $(TARGET_DIR)/$(TRIPLE)/release
# zig and cargo-zigbuild from the tools venv (cargo-zigbuild runs `python3 -m ziglang`).
ZIGBUILD := PATH="$(abspath $(ZIG_VENV))/bin:$$PATH" cargo-zigbuild
# The binaries are panic=abort: nothing reads unwind tables. lltune's own code is compiled
# without them, and scripts/discard-unwind.ld drops the standard library's at the link (about
# 130 KB of every binary; docs/binaries.md). Only the target's crates get these flags (cargo
# builds build scripts and proc macros without them when --target is given).
SHIP_RUSTFLAGS := -C force-unwind-tables=no -C link-arg=-Wl,-T,$(abspath scripts/discard-unwind.ld)

# molecule and ansible-lint, beside the pinned ansible-core in .venv.
TOOLS_PIN := tests/ansible-tools.pin
TOOLS_STAMP := $(VENV)/.tools-$(shell cat $(ANSIBLE_CORE_PIN) $(TOOLS_PIN) $(CONSTRAINTS) | sha256sum | cut -c1-12)

.PHONY: all collection zig-tools tools check-binaries smoke venv scan test molecule lint sanity ee bench clean vm-deps vm-test monitoring

all: collection

## collection: release binaries (glibc 2.17) in build/collections/.../binaries, each linked from
## plugins/modules/<module> beside its sidecar docs; docs/ copied into the collection's docs/;
## then the installable archive build/lltune-tuning-<version>.tar.gz (ansible-galaxy collection build)
collection: zig-tools venv
	RUSTFLAGS="$(SHIP_RUSTFLAGS)" $(ZIGBUILD) zigbuild --release --bins --target $(TRIPLE).$(GLIBC)
	rm -rf $(COLLECTION)
	mkdir -p $(COLLECTION)
	cp -R ansible/. $(COLLECTION)/
	@# The documentation ships with the collection (ansible-galaxy packs docs/, and installs it
	@# with the rest): docs/ of the sources, whole, so that the pages' links to each other hold.
	@# One source of truth: the source tree has no copy under ansible/.
	mkdir -p $(COLLECTION)/docs
	cp -R docs/. $(COLLECTION)/docs/
	mkdir -p $(COLLECTION)/binaries
	@for m in $(MODULES); do \
	  echo "install $(SHIPPED)/$$m -> $(COLLECTION)/binaries/$$m <- plugins/modules/$$m"; \
	  install -m 0755 $(SHIPPED)/$$m $(COLLECTION)/binaries/$$m || exit 1; \
	  ln -sfn ../../binaries/$$m $(COLLECTION)/plugins/modules/$$m || exit 1; \
	done
	@# The CLI lltune-restore.service runs at boot: the tune role installs it on the host.
	mkdir -p $(COLLECTION)/roles/tune/files
	install -m 0755 $(SHIPPED)/lltune $(COLLECTION)/roles/tune/files/lltune
	$(MAKE) --no-print-directory check-binaries
	cd $(COLLECTION) && $(ANSIBLE_ENV) $(abspath $(VENV))/bin/ansible-galaxy collection build --force --output-path $(abspath build)

## check-binaries: every shipped binary needs glibc <= 2.17; every module binary is within its budget
check-binaries:
	$(PYTHON) scripts/check_binaries.py --max-glibc $(GLIBC) --budgets scripts/size-budgets.txt $(COLLECTION)/binaries
	$(PYTHON) scripts/check_binaries.py --max-glibc $(GLIBC) --no-size $(SHIPPED)/lltune

## zig-tools: zig and cargo-zigbuild, pinned, in .venv-tools
zig-tools: $(ZIG_STAMP)

$(ZIG_STAMP): $(ZIG_PIN) $(CONSTRAINTS)
	rm -rf $(ZIG_VENV)
	$(PYTHON) -m venv $(ZIG_VENV)
	$(ZIG_VENV)/$(PIP_INSTALL) -r $(ZIG_PIN)
	touch $@

## tools: molecule and ansible-lint in .venv, beside the pinned ansible-core
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): $(VENV_STAMP) $(TOOLS_PIN) $(CONSTRAINTS)
	$(VENV)/$(PIP_INSTALL) -r $(ANSIBLE_CORE_PIN) -r $(TOOLS_PIN)
	touch $@

## venv: .venv with the pinned ansible-core
venv: $(VENV_STAMP)

$(VENV_STAMP): $(ANSIBLE_CORE_PIN) $(CONSTRAINTS)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/$(PIP_INSTALL) -r $(ANSIBLE_CORE_PIN)
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

## test: every test (the Ansible tests make their own venv), then the shipped build: the
## collection (glibc 2.17, size budget) and its modules run on the sample tree
test:
	@if $(CARGO) fmt --version >/dev/null 2>&1; then $(CARGO) fmt --all -- --check; else echo "rustfmt not installed: format check skipped"; fi
	$(CARGO) test --all-targets
	$(MAKE) --no-print-directory collection smoke

## smoke: the shipped lltune_facts, lltune_config and lltune_audit run as modules (arguments
## on standard input) on the sample tree: facts, a generated config, and its audit
smoke:
	$(PYTHON) scripts/smoke_modules.py $(COLLECTION)/binaries $(abspath $(SAMPLE_ROOT))

## molecule: the top-level molecule scenario on a simulated rack (tune in check mode, for
## real, again for idempotence, verify, rollback to the byte)
molecule: collection tools
	LLTUNE_BIN=$(abspath $(SHIPPED)/lltune) LLTUNE_COLLECTIONS=$(abspath $(COLLECTIONS)) \
	  $(ANSIBLE_ENV) PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/molecule test

## lint: ansible-lint (production profile) on the collection's roles and playbooks
lint: collection tools
	cd $(COLLECTION) && $(ANSIBLE_ENV) PATH=$(abspath $(VENV))/bin:$$PATH $(abspath $(VENV))/bin/ansible-lint --profile production --offline roles playbooks

## ee: the execution environment (ee/execution-environment.yml): ansible-builder writes its build
## context in build/ee, and scripts/ee.sh checks it (its galaxy stage replayed here, the collection's
## dependencies introspected); no container engine needed (docs/execution-environment.md)
ee: collection tools
	VENV=$(VENV) $(ANSIBLE_ENV) bash scripts/ee.sh

## sanity: ansible-test sanity on a copy of the built collection (ansible-test wants the
## collection at ansible_collections/<namespace>/<name>; it makes its own venvs, whose pip comes
## from scripts/ansible-test-pip-bootstrap.sh)
SANITY := build/sanity/ansible_collections/lltune/tuning
sanity: collection
	bash scripts/ansible-test-pip-bootstrap.sh $(VENV)/bin/python
	rm -rf build/sanity
	mkdir -p $(dir $(SANITY))
	cp -R $(COLLECTION) $(SANITY)
	@# Inside this repository build/ is ignored, and ansible-test lists a collection's files
	@# with git: without a repository of its own the copy would have no files to test.
	cd $(SANITY) && git init -q . && printf 'tests/output/\n' > .gitignore
	cd $(SANITY) && $(ANSIBLE_ENV) PATH=$(abspath $(VENV))/bin:$$PATH ansible-test sanity --venv \
	  --python $$($(abspath $(VENV))/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

## monitoring: the shipped Grafana dashboard and Prometheus alerting rules (ansible/monitoring/)
## against Debian's Prometheus and node_exporter over the simulated rack's report: promtool
## check metrics/rules, the rules' unit tests, every panel's query answered (scripts/monitoring.sh)
monitoring: collection venv
	scripts/monitoring.sh

## vm-deps: the Debian packages the VM test bed needs (qemu, OVMF, systemd-boot, GRUB, mmdebstrap)
vm-deps:
	scripts/vm/deps.sh

## vm-test: the real-host test bed (docs/vm.md): a Debian 12 guest per boot loader (systemd-boot
## reading BLS entries; GRUB with update-grub), booted under qemu, tuned, rebooted, faulted and
## rolled back through the collection's playbooks over ssh. VM_LOADERS="bls" runs one variant.
VM_LOADERS ?= bls grub
vm-test: collection venv vm-deps
	@for l in $(VM_LOADERS); do \
	  echo "== make vm-test: $$l"; VM_LOADER=$$l scripts/vm/scenario.sh || exit 1; \
	done

## bench: scan timings against read-every-file and Ansible's setup, their ratio, peak RSS and syscall
## counts, on the real dumps, a synthetic 256-CPU/4,000-IRQ tree (benches/gen-large-irqs.py) and this host
bench: collection venv
	CARGO_TARGET_DIR=$(TARGET_DIR) VENV=$(VENV) COLLECTIONS=$(COLLECTIONS) bash benches/scan.sh
	CARGO_TARGET_DIR=$(TARGET_DIR) VENV=$(VENV) COLLECTIONS=$(COLLECTIONS) bash benches/rack.sh

clean:
	rm -rf build
