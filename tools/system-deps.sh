#!/usr/bin/env bash
# Installs the system packages worldgen needs when they are missing (Debian/Ubuntu):
#   libusb-1.0-0  - open3d's native library links against it
#   python3-venv  - to create .venv (Debian splits venv/ensurepip out of python3)
#   nodejs, npm   - only with --node: the glTF validator and splat reader used by the tests
#   chromium      - only with --node: headless browser for the three.js client tests and the report/viewer page tests
set -euo pipefail
python=${PYTHON:-python3}
need=()
ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0\.so\.0' || need+=(libusb-1.0-0)
"$python" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ "${1:-}" = "--node" ]; then
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "worldgen needs these system packages: ${need[*]}; install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "installing ${need[*]} needs root; run: apt-get install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
