#!/usr/bin/env bash
# ansible-test bootstraps pip into its venvs with pip's get-pip.py, which it downloads from a
# host outside the package registries (not reachable from every build machine). This puts a
# stand-in at the path ansible-test caches that script at: pip's own wheel (from the package
# registry, pinned) and a few lines that install it, taking get-pip.py's options.
# Usage: ansible-test-pip-bootstrap.sh PYTHON     (the Python whose pip downloads the wheel)
set -euo pipefail
python=${1:?usage: ansible-test-pip-bootstrap.sh PYTHON}
version=24.2
cache=$HOME/.ansible/test/cache
script=$cache/get_pip_${version//./_}.py
mkdir -p "$cache"
if ! compgen -G "$cache/pip-$version-*.whl" >/dev/null; then
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --dest "$cache" "pip==$version"
fi
cat >"$script" <<PY
# Stand-in for get-pip.py $version (see scripts/ansible-test-pip-bootstrap.sh of the lltune
# sources): installs pip from the wheel saved beside this file.
import glob
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
wheel = glob.glob(os.path.join(here, "pip-$version-*.whl"))[0]
sys.path.insert(0, wheel)
from pip._internal.cli.main import main  # noqa: E402

# get-pip.py's own options; the rest are pip install arguments.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
args = [wheel if a == "pip==$version" else a for a in args]
sys.exit(main(["install", "--disable-pip-version-check"] + args))
PY
echo "$script"
