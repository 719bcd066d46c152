"""The serving digest: one sha256 that names exactly what an InferenceService serves.

Computed from the catalog, identically wherever it is needed: at render time into the
conformance expectations (so the post-sync run signs the digest of what Argo CD synced),
by ``kitchen promote`` for what the target environment will serve, and by the
``policy.promotion-evidence`` rule of ``kitchen check``.

Two digests:

- the **flavor digest** — the flavor (name@version), the sha256 of its adapter files, the
  URI they are loaded from (``source``), its evaluation dataset pin where it has one, and
  its base (name@version and the sha256 of every weight file): the same adapter bytes from
  the same place on the same base bytes.  It does not depend on the environment, so
  evidence from staging can be compared with what prod will serve;
- the **service digest** — the base and every flavor as above, the vLLM arguments as
  rendered and the digest of the vLLM image: everything that decides the answers of one
  InferenceService in one environment.

Both are the sha256 of a canonical JSON serialisation (keys sorted, no whitespace,
UTF-8).  A part a flavor does not have is left out, not written as null, so adding a
field to ``FLAVOR_FIELDS`` (one line) leaves the digest of every flavor without it as it
was.  Format 2 added the flavor's ``source`` (format 1 pinned the adapter's sha256 and
not where it is read from): every flavor has one, so every digest of format 1 differs
from its format-2 digest (:func:`flavor_digest_v1` tells an entry recorded before apart).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from .model import IMAGE_DIGEST, Base, Flavor
from .plan import ServicePlan

FORMAT = 2
T = TypeVar("T")


def canonical_json(value: object) -> bytes:
    """Keys sorted, no insignificant whitespace, UTF-8, no NaN or infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_of(value: object) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


def _evaluation_part(flavor: Flavor, name: str) -> object:
    """A field of the flavor's evaluation as JSON, or None where the evaluation (or the
    field, in this version of the catalog model) is absent."""
    if flavor.evaluation is None:
        return None
    return flavor.evaluation.model_dump(mode="json", by_alias=True, exclude_none=True).get(name)


# What of a flavor the digest covers: name → how to read it (None: the flavor has none).
FLAVOR_FIELDS_V1: tuple[tuple[str, Callable[[Flavor], object]], ...] = (
    ("ref", lambda f: f.ref),
    ("files", lambda f: f.files.model_dump(mode="json", by_alias=True)),
    ("dataset", lambda f: _evaluation_part(f, "dataset")),
)
FLAVOR_FIELDS: tuple[tuple[str, Callable[[Flavor], object]], ...] = (
    *FLAVOR_FIELDS_V1,
    ("source", lambda f: f.source),
)

BASE_FIELDS: tuple[tuple[str, Callable[[Base], object]], ...] = (
    ("ref", lambda b: b.ref),
    ("files", lambda b: {p.path: p.sha256 for p in b.files}),
)


def _material(obj: T, fields: tuple[tuple[str, Callable[[T], object]], ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, read in fields:
        value = read(obj)
        if value is not None:
            out[name] = value
    return out


def flavor_material(flavor: Flavor, base: Base) -> dict[str, object]:
    return {"format": FORMAT, "flavor": _material(flavor, FLAVOR_FIELDS), "base": _material(base, BASE_FIELDS)}


def flavor_digest(flavor: Flavor, base: Base) -> str:
    """The same adapter bytes from the same source (and dataset) on the same base bytes."""
    return sha256_of(flavor_material(flavor, base))


def flavor_digest_v1(flavor: Flavor, base: Base) -> str:
    """The flavor digest of format 1 (no source), as evidence indexes written before format
    2 record it: to say why such an entry no longer matches, never to accept one."""
    return sha256_of({"format": 1, "flavor": _material(flavor, FLAVOR_FIELDS_V1),
                      "base": _material(base, BASE_FIELDS)})


def image_digest(image: str) -> str:
    """``sha256:…`` of an image reference pinned by digest (the registry is not part of it:
    environments pull the same image from their own registries)."""
    m = IMAGE_DIGEST.fullmatch(image)
    return f"sha256:{m['digest']}" if m else image


def service_material(svc: ServicePlan) -> dict[str, object]:
    return {
        "format": FORMAT,
        "base": _material(svc.base, BASE_FIELDS),
        "flavors": sorted((_material(f, FLAVOR_FIELDS) for f in svc.flavors), key=lambda m: str(m["ref"])),
        "vllm_args": list(svc.args),
        "image": image_digest(svc.environment.images.vllm),
    }


def service_digest(svc: ServicePlan) -> str:
    """Everything that decides one InferenceService's answers in its environment."""
    return sha256_of(service_material(svc))
