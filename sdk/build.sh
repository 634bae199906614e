#!/usr/bin/env bash
# Builds the Go conformance binary (sdk/go/bin/) and the TypeScript package (sdk/ts/dist/),
# the artefacts that sdk/conformance.json's "go" and "ts" command lines run.
# Run from anywhere; needs go (PATH or /usr/local/go/bin) and node/npm.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

(cd "$here/go" && "$GO" build -trimpath -o bin/pcs-conformance ./cmd/pcs-conformance)

cd "$here/ts"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
rm -rf dist
npm run --silent build
echo "built sdk/go/bin/pcs-conformance and sdk/ts/dist/"
