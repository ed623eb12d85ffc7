#!/usr/bin/env bash
# The one test command (README's, and what .ci/run runs): installs what the tests need on a fresh
# Debian machine, then builds, typechecks, lints and runs every test, ending with `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients and the reference Swift, from Debian: swift-ring-builder (ring compatibility),
# swift-container-server and swift-account-server (listing behaviour compared side by side),
# python-swiftclient's `swift`, rclone, the aws CLI and s3cmd (integration tests), bzip2 (the
# proxy's tar.bz2 extract-archive), fincore (util-linux-extra: which pages of a file are cached, for
# the page cache tests).
need=()
for tool in swift-ring-builder swift-container-server swift-account-server swift rclone s3cmd bzip2 fincore; do command -v "$tool" >/dev/null || need+=("$tool"); done
[ -x /usr/bin/aws ] || need+=(aws)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages for: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends swift swift-container swift-account python3-swift python3-swiftclient rclone awscli s3cmd bzip2 util-linux-extra >/dev/null
fi

npm ci --no-audit --no-fund
npm test -- "$@"
