#!/usr/bin/env bash
# The project's test command: install into .venv, then ruff, mypy --strict, and the suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/core -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
log=$(mktemp)
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >"$log" 2>&1; then
    cat "$log"; exit 1
fi
rm -f "$log"

echo "== ruff"
.venv/bin/ruff check .

echo "== mypy --strict"
# mypy must see the installed names (spawnkit.core, ...), which the package-dir mapping
# builds from core/, spawners/ and cli/: give it the same layout as links.
shadow=$(mktemp -d)
trap 'rm -rf "$shadow"' EXIT
mkdir "$shadow/spawnkit"
for pkg in core spawners cli; do ln -s "$root/$pkg" "$shadow/spawnkit/$pkg"; done
(cd "$shadow" && MYPYPATH="$shadow" "$root/.venv/bin/mypy" --strict --explicit-package-bases \
    --cache-dir "$root/.mypy_cache" --config-file "$root/pyproject.toml" \
    -p spawnkit.core -p spawnkit.spawners -p spawnkit.cli)

echo "== pytest"
.venv/bin/python -m pytest -q -rs "$@"
