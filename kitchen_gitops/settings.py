"""Every setting kitchen takes from its process environment, and every default that the
command line and the stages share, declared once with its type and its help.

The command line names these variables in its ``envvar=`` options and the stages read them
through the accessors below; nothing else in the package reads ``os.environ`` for a
setting of its own.  A value that does not parse is a configuration error (exit 2) that
names the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, UsageError

# ---------------------------------------------------------------- shared defaults

DEFAULT_ENGINE = "regorus"  # the embedded Rego engine of kitchen check and policy test
S3_REGION = "us-east-1"  # the region of an S3 endpoint that names none
S3_TIMEOUT_S = 10.0  # seconds to wait for an S3 endpoint to connect or answer
OPA_TIMEOUT_S = 10.0  # seconds to wait for an OPA server
POLICY_TIMEOUT_S = 60.0  # one evaluation in an embedded engine (milliseconds for the example library)
RENDER_TIMEOUT_S = 60.0  # rendering one environment (templates come from pull requests too)
CACHE_MAX_MIB_DEFAULT = 512  # .kitchen-cache/ after a run (the synthetic organisation's: about 60 MiB)
EXPECTATIONS_FILE = Path("/etc/kitchen/expectations.json")  # where the conformance Job mounts them


@dataclass(frozen=True)
class Variable:
    """A process environment variable kitchen reads: its name, what it means, and its type."""

    name: str
    help: str
    kind: type = str  # what its value is read as

    def raw(self) -> str:
        return os.environ.get(self.name, "").strip()

    def get(self) -> str | None:
        return os.environ.get(self.name)

    def text(self, default: str = "") -> str:
        return self.raw() or default

    def path(self, default: Path) -> Path:
        raw = os.environ.get(self.name, "")
        return Path(raw) if raw else default

    def flag(self) -> bool:
        return bool(os.environ.get(self.name))

    def count(self) -> int | None:
        """A positive count (at least 1), or None when unset."""
        raw = self.raw()
        if not raw:
            return None
        try:
            return max(1, int(raw))
        except ValueError:
            raise UsageError(f"${self.name}={raw!r} is not a number of processes") from None

    def seconds(self, default: float, error: type[ConfigError] = ConfigError) -> float:
        """A time limit: seconds between 0 and a day (``default`` when unset)."""
        raw = os.environ.get(self.name, "")
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise error(f"${self.name}={raw!r} is not a number of seconds") from None
        if not 0 < value < 86_400:
            raise error(f"${self.name}={raw!r} must be between 0 and 86400 seconds")
        return value


# ---------------------------------------------------------------- kitchen's own

JOBS = Variable("KITCHEN_JOBS", "Worker processes of kitchen check, one environment each (default: one more "
                "than the CPUs this process may use, one on one CPU); 1 also keeps catalog loading in one "
                "process.", int)
RENDER_TIMEOUT = Variable("KITCHEN_RENDER_TIMEOUT", f"Seconds rendering one environment may take (default "
                          f"{RENDER_TIMEOUT_S:g}).", float)
POLICY_TIMEOUT = Variable("KITCHEN_POLICY_TIMEOUT", f"Seconds one policy evaluation in an embedded engine may "
                          f"take (default {POLICY_TIMEOUT_S:g}).", float)
OPA_URL = Variable("KITCHEN_OPA_URL", "Evaluate the policies on this OPA server instead (kitchen check --opa-url).")
S3_ENDPOINT = Variable("KITCHEN_S3_ENDPOINT", "S3 endpoint as seen from here (host:port or URL), overriding "
                       "the environment's (--s3-endpoint).")
PVC_MIRROR = Variable("KITCHEN_PVC_MIRROR", "Local mirror of the PVCs: pvc://CLAIM/PATH is read from "
                      "DIR/CLAIM/PATH (--pvc-mirror).", Path)
EXPECTATIONS = Variable("KITCHEN_EXPECTATIONS", f"The conformance expectations JSON (default "
                        f"{EXPECTATIONS_FILE}).", Path)
CACHE = Variable("KITCHEN_CACHE", "off: kitchen check neither reads nor writes .kitchen-cache/ (--no-cache).")
CACHE_MAX_MIB = Variable("KITCHEN_CACHE_MAX_MIB", f"The size .kitchen-cache/ is trimmed to after a run, in MiB "
                         f"(default {CACHE_MAX_MIB_DEFAULT}).", int)
DEBUG = Variable("KITCHEN_DEBUG", "Set: an internal error shows its traceback.", bool)

# ---------------------------------------------------------------- the S3 client's

ACCESS_KEY = Variable("AWS_ACCESS_KEY_ID", "S3 access key.")
SECRET_KEY = Variable("AWS_SECRET_ACCESS_KEY", "S3 secret key.")
SESSION_TOKEN = Variable("AWS_SESSION_TOKEN", "S3 session token (temporary credentials).")
CA_BUNDLE = Variable("AWS_CA_BUNDLE", "PEM file of the CA that signed the S3 endpoint's certificate.", Path)

SSL_CERT_FILE = Variable("SSL_CERT_FILE", "CA bundle for TLS to S3 when the environment names none "
                         "(default: certifi's).", Path)

# ---------------------------------------------------------------- where kitchen runs

GITHUB_ACTIONS = Variable("GITHUB_ACTIONS", "\"true\" under GitHub Actions: --format auto writes GitHub's "
                          "workflow commands.", bool)
NODE_NAME = Variable("NODE_NAME", "The node kitchen conform gpu runs on, for its report (the Job sets it).")

VARIABLES = (JOBS, RENDER_TIMEOUT, POLICY_TIMEOUT, OPA_URL, S3_ENDPOINT, PVC_MIRROR, EXPECTATIONS, CACHE,
             CACHE_MAX_MIB, DEBUG,
             ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, CA_BUNDLE, SSL_CERT_FILE, GITHUB_ACTIONS, NODE_NAME)


def cache_max_bytes() -> int:
    """``$KITCHEN_CACHE_MAX_MIB`` in bytes (a whole number of MiB, at least 1)."""
    raw = CACHE_MAX_MIB.raw()
    if not raw:
        return CACHE_MAX_MIB_DEFAULT << 20
    try:
        mib = int(raw)
    except ValueError:
        raise UsageError(f"${CACHE_MAX_MIB.name}={raw!r} is not a whole number of MiB") from None
    if mib < 1:
        raise UsageError(f"${CACHE_MAX_MIB.name}={raw!r} must be at least 1")
    return mib << 20


def credential(variable: Variable) -> str | None:
    """An S3 credential from the environment, None when unset or empty."""
    return os.environ.get(variable.name) or None
