"""The gate floors of ``policies/data.yaml`` as the Python side reads them (the Rego rule
``policy.gate-floor`` reads the same data): which floors hold an environment, and the
waiver limits they set.

An environment is held to the floor of its name — or, not named, to the ``unnamed``
floor — and to the floor of its cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WAIVER_MAX_DAYS = 90  # when the policy data does not say


def floors_of(data: Mapping[str, Any], env_name: str, cluster: str) -> list[dict[str, Any]]:
    """The floors that hold environment ``env_name`` on ``cluster``; none without gate_floors."""
    return [floor for _, floor in named_floors_of(data, env_name, cluster)]


def named_floors_of(data: Mapping[str, Any], env_name: str, cluster: str) -> list[tuple[str, dict[str, Any]]]:
    """:func:`floors_of`, each with its name in ``gate_floors.environments``."""
    spec = data.get("gate_floors")
    if not isinstance(spec, dict):
        return []
    named: dict[str, Any] = spec.get("environments") or {}
    names = [env_name if env_name in named else spec.get("unnamed")]
    names.append((spec.get("clusters") or {}).get(cluster))
    return [(n, named[n]) for n in dict.fromkeys(names) if isinstance(n, str) and isinstance(named.get(n), dict)]


def wildcards_forbidden(data: Mapping[str, Any], clusters: Mapping[str, str]) -> frozenset[str]:
    """The environments (by name → cluster) where a waiver may not use a wildcard object."""
    return frozenset(env for env, cluster in clusters.items()
                     if any(f.get("waiver_wildcards") is False for f in floors_of(data, env, cluster)))


def waiver_max_days(data: Mapping[str, Any]) -> int:
    days = data.get("waiver_max_days")
    return days if isinstance(days, int) and not isinstance(days, bool) else WAIVER_MAX_DAYS
