"""Errors that stop a run: a broken installation, configuration or usage (exit 2).

Bad catalog input is never one of these: it becomes findings and the run goes on.
"""

from __future__ import annotations


class KitchenError(Exception):
    """A problem of usage or configuration; the CLI prints it and exits with 2."""

    exit_code = 2


class UsageError(KitchenError):
    pass


class ConfigError(KitchenError):
    pass
