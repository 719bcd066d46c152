"""vLLM's command line as the plan holds it: the computed options, structured, and the
environment's ``extra_args`` as written, read back the way vLLM's parser reads them."""

from __future__ import annotations

from dataclasses import dataclass

ArgValue = str | tuple[str, ...] | None


def normalise_flag(flag: str) -> str:
    """vLLM's parser reads ``--max_loras`` as ``--max-loras``."""
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


@dataclass(frozen=True)
class VllmArgs:
    """vLLM's command line, structured: the computed options (flag → value; None for a
    switch, a tuple for a flag that takes several values) and the environment's
    ``extra_args`` as written.  :meth:`argv` writes it at the edge (templates, the
    conformance job); :meth:`flags` reads it as vLLM's parser does (``_`` as ``-``,
    ``--flag=value`` and ``--flag value``, the last one wins)."""

    options: tuple[tuple[str, ArgValue], ...]
    extra: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        out: list[str] = []
        for flag, value in self.options:
            if value is None:
                out.append(flag)
            elif isinstance(value, tuple):
                out += [flag, *value]
            else:
                out.append(f"{flag}={value}")
        return out + list(self.extra)

    def flags(self) -> dict[str, ArgValue]:
        out: dict[str, ArgValue] = {}
        for flag, value in self.options:
            out[normalise_flag(flag)] = value
        last: str | None = None
        for token in self.extra:
            if token.startswith("-") and len(token) > 1 and not _is_number(token):
                flag, eq, value = token.partition("=")
                last = normalise_flag(flag)
                out[last] = value if eq else None
                if eq:
                    last = None
            elif last is not None:  # the value of `--flag value`
                previous = out[last]
                out[last] = token if previous is None else (
                    (*previous, token) if isinstance(previous, tuple) else (previous, token))
        return out


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True

