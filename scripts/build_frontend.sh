#!/usr/bin/env bash
# Build the web client into frontend/dist/: index.html, content-hashed files under assets/, and config.json
# (the local default; each deployed environment writes its own). Installs the pinned npm packages first
# when package-lock.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../frontend"

if ! command -v npm >/dev/null 2>&1; then
  echo "ERROR: npm is not installed. Install Node.js 20.19 or newer (it includes npm), then run this again." >&2
  exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "ERROR: Node.js $(node --version) is too old for the web client's build (Vite 8): install 20.19 or newer." >&2
  exit 1
fi

# `npm ci` installs exactly package-lock.json, from scratch; skip it while node_modules matches the lock.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "==> frontend: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "==> frontend: vite build -> frontend/dist"
npm run --silent build -- --logLevel warn
