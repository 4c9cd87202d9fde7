#!/usr/bin/env bash
# Configure and build one flavour of qgate.
# Usage: scripts/build.sh [release|sanitize] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
release) dir=${2:-build-release}; args=(-DCMAKE_BUILD_TYPE=Release) ;;
sanitize) dir=${2:-build-sanitize}; args=(-DCMAKE_BUILD_TYPE=Debug -DQGATE_SANITIZE=ON) ;;
*) echo "usage: $0 [release|sanitize] [BUILD_DIR]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
