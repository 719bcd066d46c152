"""Helpers shared by the conformance tests: expectations for one service, in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kitchen_gitops.conform.expectations import Expectations

BASE = "tiny-llama"
TINY_VOCAB = 512  # tests/support/tiny_model.py's tokenizer
CLEAN_FLAVORS = ("faq", "summarise", "classify")
PROBES = {
    "faq": ["Question: what is the capital of France? Answer:"],
    "summarise": ["Summarise: the meeting moved the release to Friday. Summary:"],
    "classify": ["Classify: my invoice is wrong and I was charged twice. Label:"],
    "noop": ["Hello, how can I help you today?"],
}
# a load small enough for two shared CPU cores
LOAD = {"concurrency": 4, "requests": 16, "output_tokens": 24, "prompt_tokens": 32,
        "readiness_timeout_s": 60}
GENEROUS_SLO = {"ttft_p95_ms": 60000, "tpot_p95_ms": 10000, "min_output_tokens_per_s": 0.1,
                "goodput_min_ratio": 0.5}


def make_expectations(url: str, flavors: list[dict[str, Any]], *, slo: dict[str, Any] | None = None,
                      load: dict[str, Any] | None = None, environment: str = "test") -> Expectations:
    """Expectations for one service at ``url``; ``flavors`` as in the ConfigMap's JSON."""
    doc = {
        "environment": environment,
        "services": [{
            "tenant": "kitchen-test", "namespace": "kitchen-test", "name": BASE, "endpoint": url,
            "base": BASE, "base_ref": f"{BASE}@1", "vocab_size": TINY_VOCAB,
            "source": {"file": "catalog/tenants/kitchen-test.yaml", "line": 7, "col": 5},
            "flavors": flavors,
        }],
        "slo": {**(slo or GENEROUS_SLO),
                "source": {"file": "environments/test.yaml", "line": 30, "col": 3}},
        "load": load or LOAD,
    }
    return Expectations.model_validate(doc)


def flavor(name: str, *, smoke: list[dict[str, Any]] | None = None, line: int = 1) -> dict[str, Any]:
    return {"name": name, "ref": f"{name}@v1", "probes": PROBES.get(name, []), "smoke": smoke or [],
            "source": {"file": f"catalog/flavors/{name}@v1.yaml", "line": line, "col": 1}}


def write(tmp: Path, exp: Expectations) -> Path:
    path = tmp / "expectations.json"
    path.write_text(exp.to_json(), encoding="utf-8")
    return path


def load_json(text: str) -> Any:
    return json.loads(text)


def new_signing_key(path: Path) -> str:
    """An ed25519 private key written to ``path`` as openssl writes it (PKCS#8 PEM); its
    public key's PEM is returned."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
