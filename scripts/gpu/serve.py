#!/usr/bin/env python3
"""Start, wait for and stop vLLM exactly as kitchen renders it, on the GPU machine.

    python3 serve.py start RENDERED_ENV_DIR LOG [EXTRA_ARG...]
        # the rendered ServingRuntime's command + the InferenceService's args
    python3 serve.py wait LOG TIMEOUT_S
    python3 serve.py stop
    python3 serve.py lines LOG                                   # the startup lines about memory and KV cache

The command is the ServingRuntime's `command` + `args` followed by the InferenceService's
`args` (how KServe merges them), with `python` -> python3; its environment is the
ServingRuntime's `env` plus PYTHONPATH (the carried packages) and
VLLM_USE_FLASHINFER_SAMPLER=0 (flashinfer is not carried; see README.md).  The model and
adapter paths (/mnt/models/...) are served by a symbolic link /mnt/models -> the built models.
The server runs in its own session (setsid), so it outlives the device command that
started it; its pid is kept in /tmp/gpu-eval/vllm.pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

PID = Path("/tmp/gpu-eval/vllm.pid")
PORT = 8080


def rendered_command(env_dir: Path) -> tuple[list[str], dict[str, str]]:
    runtime = isvc = None
    for f in sorted(env_dir.rglob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "ServingRuntime":
            runtime = doc
        elif doc.get("kind") == "InferenceService":
            isvc = doc
    assert runtime and isvc, f"no ServingRuntime/InferenceService under {env_dir}"
    c = runtime["spec"]["containers"][0]
    cmd = [*c["command"], *c.get("args", []), *isvc["spec"]["predictor"]["model"]["args"]]
    if cmd[0] == "python":
        cmd[0] = "python3"
    env = {e["name"]: str(e["value"]) for e in c.get("env", []) if "value" in e}
    return cmd, env


def start(env_dir: Path, log: Path, extra: list[str]) -> None:
    cmd, env = rendered_command(env_dir)
    cmd += extra
    full_env = {**os.environ, **env, "VLLM_USE_FLASHINFER_SAMPLER": "0", "PYTHONUNBUFFERED": "1"}
    full_env["HOME"] = "/tmp"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as f:
        f.write(("$ " + " ".join(cmd) + "\n$ env " + json.dumps(env) + "\n").encode())
        f.flush()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=full_env,
                             start_new_session=True)
    PID.parent.mkdir(parents=True, exist_ok=True)
    PID.write_text(str(p.pid))
    (log.parent / "vllm_command.json").write_text(json.dumps({"command": cmd, "env": env}, indent=1))
    print(f"started pid {p.pid}: {' '.join(cmd)}", flush=True)


def alive() -> bool:
    if not PID.exists():
        return False
    try:
        os.kill(int(PID.read_text()), 0)
        return True
    except OSError:
        return False


def ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/models", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def wait(log: Path, timeout: float) -> int:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if ready():
            print(f"ready after {time.time() - t0:.0f}s of waiting", flush=True)
            return 0
        if not alive():
            print("vLLM exited during startup; log tail:\n" + tail(log, 80), flush=True)
            return 1
        time.sleep(2)
    print(f"not ready after {timeout:.0f}s; log tail:\n" + tail(log, 40), flush=True)
    return 2


def stop() -> None:
    if not PID.exists():
        return
    pid = int(PID.read_text())
    for sig, pause in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except OSError:
            break
        t0 = time.time()
        while time.time() - t0 < pause and alive():
            time.sleep(0.5)
    PID.unlink(missing_ok=True)
    print("stopped", flush=True)


def tail(log: Path, n: int) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


KEYS = re.compile(r"(KV cache|Maximum concurrency|Model loading took|memory|Memory|LoRA|lora|CUDA graph|"
                  r"Graph capturing|torch.compile|init engine|Starting vLLM|Using .*backend|FlashAttention|"
                  r"max_num_batched_tokens|chunked prefill|Available routes|Application startup|Error|error|"
                  r"Traceback|WARNING)")


def lines(log: Path) -> None:
    for line in log.read_text(errors="replace").splitlines():
        if KEYS.search(line) and "POST /v1" not in line and "GET /" not in line:
            print(line[:400])


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "start":
        start(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
    elif what == "wait":
        sys.exit(wait(Path(sys.argv[2]), float(sys.argv[3])))
    elif what == "stop":
        stop()
    elif what == "lines":
        lines(Path(sys.argv[2]))
