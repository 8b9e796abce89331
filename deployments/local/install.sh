#!/usr/bin/env bash
# Installs what formq's demo and tests need and is missing: Debian's
# redis-server, Debian's chromium (for the browser tests), Node.js and npm
# (for the conformance checks) when missing, and versitygw
# (S3 server) into ./bin. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSITYGW_VERSION=v1.8.0

if ! command -v redis-server >/dev/null 2>&1; then
  echo "install: redis-server (apt)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "install: chromium (apt, for the browser tests)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install: nodejs and npm (apt, for the conformance checks of internal/conformance; they need Node.js 20 or later)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

if [ ! -x bin/versitygw ]; then
  echo "install: versitygw $VERSITYGW_VERSION into ./bin (go install; takes a minute the first time)"
  GOBIN="$PWD/bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi

if [ "${1:-}" = "--lint" ] && [ ! -x bin/staticcheck ]; then
  echo "install: staticcheck into ./bin"
  GOBIN="$PWD/bin" go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
