#!/usr/bin/env bash
# The Go and TypeScript SDK suites, for CI: go vet + go test in sdk/go, then the TypeScript
# build and `node --test` in sdk/ts. Exits non-zero on the first failure.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

echo "== sdk/go: gofmt, go vet, go test"
cd "$here/go"
unformatted="$("$(dirname "$GO")/gofmt" -l .)"
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
"$GO" vet ./...
"$GO" test -count=1 ./...

echo "== sdk/ts: tsc build, node --test"
cd "$here/ts"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm test
