#!/usr/bin/env bash
# IndexTTS Studio launcher.
#   ./start_app.sh [app options]   set up (first run) and start the app at http://127.0.0.1:7860
#   ./start_app.sh --test [pytest options]   set up with the test tools and run the whole test suite
# Environment: PYTHON (interpreter for the venv, default python3), INDEXTTS_VENV (venv folder,
# default .venv), TORCH_SPEC (what to pip-install when torch is missing, default "torch").
set -euo pipefail
cd "$(dirname "$0")"

VENV="${INDEXTTS_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating a virtual environment in $VENV ..."
    "${PYTHON:-python3}" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# Install a requirements file once, again only when it changes.
install_reqs() {
    local file="$1" stamp="$VENV/.$(basename "$1").sha256" want
    want="$(sha256sum "$file" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "Installing $file ..."
        "$PY" -m pip install --disable-pip-version-check -q -r "$file"
        echo "$want" > "$stamp"
    fi
}

# An installed torch (CPU, CUDA or ROCm build) is kept; pip would otherwise pick one for us.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "Installing PyTorch (${TORCH_SPEC:-torch}) ..."
    "$PY" -m pip install --disable-pip-version-check -q "${TORCH_SPEC:-torch}"
fi
install_reqs requirements.txt

if [ "${1:-}" = "--test" ]; then
    shift
    install_reqs requirements-dev.txt
    install_reqs requirements-ray.txt  # the optional Ray extra has a test of its own
    set +e
    "$PY" -m pytest "$@"
    rc=$?
    # pytest's 5 means no test ran: that is a failure, not a pass.
    [ "$rc" -eq 5 ] && echo "error: no tests were collected" >&2
    exit "$rc"
fi

export GRADIO_ANALYTICS_ENABLED=False
exec "$PY" -m app.webui "$@"
