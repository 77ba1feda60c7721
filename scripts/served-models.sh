#!/usr/bin/env bash
# Makes (once) the Python environment with the real model servers the served-model tests start:
# MLServer + its scikit-learn runtime and MLflow, pinned in server/tests/served/requirements.txt.
# It lives outside the clone, keyed by the requirements' hash, so CI and a second clone reuse it;
# on a machine without it, it is built from PyPI (about a minute). Prints the environment's path.
set -euo pipefail
cd "$(dirname "$0")/.."
req=server/tests/served/requirements.txt
key=$(sha256sum "$req" | cut -c1-12)
root="${STRATA_PY_CACHE:-$HOME/.cache/strata-py}"
venv="$root/served-$key"
if [ ! -x "$venv/bin/mlserver" ] || [ ! -x "$venv/bin/mlflow" ] || [ ! -f "$venv/.complete" ]; then
  echo "[served-models] creating $venv (MLServer, MLflow, scikit-learn from PyPI)" >&2
  rm -rf "$venv"
  mkdir -p "$root"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv"
