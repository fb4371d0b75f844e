#!/usr/bin/env bash
# Creates (once) a Python venv holding RC's official Python server SDK,
# rc-server-sdk 3.2.0, and jinja2 (which the SDK imports but does not declare),
# for the e2e tests that drive rcim-server's Server API with it. Needs PyPI the
# first time only; afterwards the tests run offline. Prints the venv's python.
#
#   tests/rc-server-sdk/setup.sh [VENV_DIR]   (default: target/rc-server-sdk-venv)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${1:-$root/target/rc-server-sdk-venv}"
python="$venv/bin/python"
if ! "$python" -c 'import rongcloud.rongcloud, jinja2' >/dev/null 2>&1; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'rc-server-sdk==3.2.0' 'jinja2>=3,<4' >&2
fi
"$python" -c 'import rongcloud.rongcloud, jinja2' >&2
echo "$python"
