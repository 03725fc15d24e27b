#!/usr/bin/env bash
# Create .venv and install every pinned Python dependency into it; re-run when a requirements file changes.
# Called by the Makefile on first use; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "ERROR: Python 3.11 or newer is needed (python3 --version says: $(python3 --version 2>&1))." >&2
  echo "Install it (e.g. apt-get install python3.11 python3.11-venv), or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv || {
    echo "ERROR: could not create a virtual environment; install the venv module (e.g. apt-get install python3-venv)." >&2
    exit 1
  }
fi
echo "==> Installing the pinned Python dependencies into .venv (the first run takes a few minutes)"
.venv/bin/python -m pip install --quiet --upgrade pip
# --progress-bar on: pip shows a bar per download when attached to a terminal.
set +e
.venv/bin/python -m pip install --progress-bar on -r requirements/dev.txt 2>&1 \
  | grep --line-buffered -v -E '^(Requirement already satisfied|  Using cached|WARNING: Location)'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "ERROR: pip could not install the dependencies (above). Check the network access to PyPI, then run 'make test' again." >&2
  exit 1
fi
if ! .venv/bin/python -m pip check >/dev/null; then
  .venv/bin/python -m pip check >&2
  echo "ERROR: the installed packages conflict (above). Run 'make reset-venv' and try again." >&2
  exit 1
fi
touch .venv/.installed
echo "==> .venv is ready"
