#!/bin/bash
# Sets everything up on a fresh Debian 12 machine (as root) and runs all the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
exec bash tests/run.sh "$@"
