#!/usr/bin/env bash
# `make ee`: the execution environment definition (ee/execution-environment.yml) checked as far
# as this machine allows without a container engine: ansible-builder (pinned, in .venv) writes
# the build context; then the context's galaxy stage is replayed here on its own files - the
# staged archive renamed by the definition's RUN line, installed by ansible-galaxy from the
# context's requirements.yml - and ansible-builder's own introspection reads the installed
# collection's dependencies (none). Fails on any difference.
set -euo pipefail
VENV=${VENV:-.venv}
ctx=build/ee
rm -rf "$ctx" build/ee-check
"$VENV/bin/ansible-builder" create -f ee/execution-environment.yml -c "$ctx" --output-filename Containerfile
fail() { echo "make ee: $*" >&2; exit 1; }

version=$(sed -n 's/^version: *//p' ansible/galaxy.yml)
archive=build/lltune-tuning-$version.tar.gz
[ -f "$archive" ] || fail "$archive is missing (make collection writes it)"
staged=("$ctx"/_build/collections/lltune-tuning-*.tar.gz)
[ "${#staged[@]}" -eq 1 ] || fail "the context stages ${#staged[@]} archives, not one: ${staged[*]} (remove old build/lltune-tuning-*.tar.gz)"
cmp -s "$archive" "${staged[0]}" || fail "the staged archive ${staged[0]} is not $archive"

# The pins the image installs are the ones the tests use.
core_pin=$(grep -v '^#' tests/ansible-core.pin | grep -m1 .)
grep -q "ARG ANSIBLE_INSTALL_REFS=\"$core_pin " "$ctx/Containerfile" \
  || fail "the Containerfile does not install $core_pin (tests/ansible-core.pin)"
grep -q '^FROM $EE_BASE_IMAGE as base' "$ctx/Containerfile" || fail "the Containerfile does not start from EE_BASE_IMAGE"

# The galaxy stage, replayed: COPY _build/collections/ to /tmp/lltune-collections/ (here a
# folder of build/ee-check), its RUN line, then ansible-galaxy on _build/requirements.yml.
check=$PWD/build/ee-check
mkdir -p "$check/lltune-collections"
cp "$ctx"/_build/collections/* "$check/lltune-collections/"
run_line=$(grep -m1 '^RUN set -- /tmp/lltune-collections/' "$ctx/Containerfile") || fail "no staging RUN line in the Containerfile"
sh -c "$(printf '%s' "${run_line#RUN }" | sed "s#/tmp/lltune-collections#$check/lltune-collections#g")" \
  || fail "the staging RUN line failed on the staged archive"
sed "s#/tmp/lltune-collections#$check/lltune-collections#g" "$ctx/_build/requirements.yml" > "$check/requirements.yml"
# Only the image's collections folder counts (as in the image): a collection installed
# elsewhere (the build's own) must not make the install a no-op.
export ANSIBLE_COLLECTIONS_PATH="$check/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
ANSIBLE_GALAXY_DISABLE_GPG_VERIFY=1 "$VENV/bin/ansible-galaxy" collection install -r "$check/requirements.yml" \
  --collections-path "$check/collections" --offline
"$VENV/bin/ansible-galaxy" collection list --collections-path "$check/collections" lltune.tuning \
  | grep -q "lltune.tuning *$version" || fail "lltune.tuning $version is not installed from the context"
"$VENV/bin/ansible-doc" -t module lltune.tuning.lltune_cpu \
  | grep -q 'persist_planned' || fail "ansible-doc does not show the installed collection's lltune_cpu"
# ansible-builder's builder stage: what the installed collections need (nothing).
"$VENV/bin/python" "$ctx/_build/scripts/introspect.py" introspect "$check/collections" \
  --write-pip "$check/requirements.txt" --write-bindep "$check/bindep.txt" > "$check/introspect.txt"
for f in requirements.txt bindep.txt; do
  if [ -s "$check/$f" ]; then fail "the collection declares $f entries: $(cat "$check/$f")"; fi
done
echo "make ee: build context $ctx (Containerfile, lltune.tuning $version from $archive) checked"
