#!/bin/sh
# Offline stand-in for `npm ci && npm run build`: run from the checkout root. Idempotent.
# Writes dist/index.html with the release version; dist/ is replaced in one rename.
set -eu
cd "$(dirname "$0")/.."
version=$(cat VERSION)
sleep "${VOXLAB_BUILD_SECONDS:-1}"
rm -rf dist.tmp
mkdir dist.tmp
sed "s/@VERSION@/${version}/g" src/index.html > dist.tmp/index.html
printf '%s\n' "$version" > dist.tmp/VERSION
rm -rf dist
mv dist.tmp dist
echo "build: ${version} written to $(pwd)/dist/index.html"
