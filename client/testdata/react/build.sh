#!/bin/sh
# Bundles the test page of client/react_browser_test.go into dist/: React
# 19 (react.js, the one copy the page and formq-react.js share through the
# page's import map), and the page (app.js) with the guide's form. The hook
# itself is not bundled: "formq-react" stays an import, which the page's
# import map points at formq's /formq-react.js, so the test runs the
# module formq serves. dist/sources.sha256 records what was bundled; the
# test refuses a dist/ older than its sources.
set -eu
cd "$(dirname "$0")"
rm -rf dist
npx esbuild react.js app.jsx --bundle --splitting --format=esm --minify \
  --jsx=automatic --external:formq-react --define:process.env.NODE_ENV='"production"' \
  --legal-comments=none --entry-names='[name]' --chunk-names='chunk-[hash]' --outdir=dist
sha256sum react.js app.jsx create-user-form.jsx actions.js package-lock.json > dist/sources.sha256
