"""Escaping for every sink that kitchen writes catalog-derived text into.

Anything that comes from a pull request — a value, a key, a file name, an exception's
text quoting them — may hold newlines, ANSI escape sequences, bidirectional overrides,
XML-invalid characters or the syntax of the sink itself.  Each function below makes a
string safe for exactly one sink: after it, the sink parses the string as the one
field it was put in (one line, one property, one table cell, one XML attribute), and
a reader sees every unusual character as a visible escape instead of its effect.

The loader already refuses control characters in catalog values and file names
(:mod:`kitchen_gitops.load`); these functions are the second line, for the text that
does not come through the loader (exception messages, paths given on the command
line, the policy library, a revision name).

=========================  ===============================================================
function                   sink
=========================  ===============================================================
:func:`visible`            any one-line human-readable record (text report, stderr)
:func:`terminal`           a terminal / CI log line (same as ``visible``; newlines kept
                           only with ``keep_newlines``)
:func:`github_message`     the message part of a GitHub workflow command (``::error …::MSG``)
:func:`github_property`    a property value of a workflow command (``file=``, ``title=``)
:func:`github_log`         plain lines in a GitHub Actions log, read as no workflow command
:func:`xml_text`           JUnit XML text and attribute values (XML 1.0 valid characters)
:func:`json_text`          JSON and SARIF strings (no lone surrogates, which cannot be
                           encoded as UTF-8)
:func:`markdown_cell`      prose in a Markdown table cell (PR comments, step summaries)
:func:`markdown_code`      a value in a Markdown table cell, as an inline code span
:func:`yaml_comment`       a ``# …`` comment line in a rendered manifest
:func:`tsv_field`          one field of a tab-separated file (``models.tsv``)
=========================  ===============================================================
"""

from __future__ import annotations

import hashlib
import re

# Characters that change how a line is read or shown rather than what it says:
# C0 controls (tab included: it shifts columns), DEL, C1 controls (CSI 0x9b starts an
# ANSI sequence on many terminals), Unicode line/paragraph separators and the
# bidirectional embedding/override/isolate controls ("Trojan Source"), the BOM and
# zero-width characters that hide text, lone surrogates (not encodable as UTF-8) and
# the non-characters U+FFFE/U+FFFF.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ufffe\uffff\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def invisible_characters(text: str) -> list[str]:
    """The characters of ``text`` that :func:`visible` would escape, each once, in order."""
    seen: dict[str, None] = {}
    for m in _INVISIBLE.finditer(text):
        seen.setdefault(m.group(0), None)
    return list(seen)


def visible(text: str) -> str:
    r"""``text`` on one line with every control, format or unencodable character escaped.

    ``"a\nb\x1b[31m"`` → ``a\nb\e[31m`` (backslash sequences, readable and unambiguous
    enough for a log; backslashes already in the text are left alone).
    """
    return _INVISIBLE.sub(_escape_char, text)


def terminal(text: str, *, keep_newlines: bool = False) -> str:
    """Text for a terminal or CI log: no escape sequence reaches the terminal.

    With ``keep_newlines`` a multi-line message keeps its line breaks (each line is
    still escaped); otherwise the result is one line.
    """
    if not keep_newlines:
        return visible(text)
    return "\n".join(visible(line) for line in text.split("\n"))


def github_message(text: str) -> str:
    """The data of a GitHub Actions workflow command (after the second ``::``).

    The runner decodes ``%25``, ``%0D`` and ``%0A``; any other control character is
    made visible first, so the command stays on one line and the annotation shows
    the newline the author wrote instead of a forged command on the next line.
    """
    text = _INVISIBLE.sub(lambda m: m.group(0) if m.group(0) in "\r\n" else _escape_char(m), text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A property value of a workflow command (``file=…,line=…,title=…``).

    Besides what :func:`github_message` encodes, ``:`` would end the properties and
    ``,`` would start a new one.  Newlines are made visible rather than encoded: a file
    name or title is one line.
    """
    return visible(text).replace("%", "%25").replace(":", "%3A").replace(",", "%2C")


def github_log(lines: list[str]) -> list[str]:
    """Lines for a GitHub Actions log that the runner prints and never runs.

    The runner reads a line as a workflow command when it starts with ``::`` after
    leading spaces (and, in its older syntax, when it holds ``##[``), whatever put it
    there.  The lines, each made visible on one line, are wrapped in
    ``::stop-commands::TOKEN`` … ``::TOKEN::``; the token is the SHA-256 of the lines
    themselves, so it is the same for the same output and no line can know it in advance
    to end the block early.
    """
    shown = [visible(line) for line in lines]
    token = "kitchen-" + hashlib.sha256("\n".join(shown).encode("utf-8", "surrogatepass")).hexdigest()
    return [f"::stop-commands::{token}", *shown, f"::{token}::"]


# XML 1.0 Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
# C1 controls and DEL are allowed but "discouraged" (NEL is a line end in XML 1.1) and
# break JUnit viewers: escaped too.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str, *, keep_newlines: bool = True) -> str:
    """Text that an XML 1.0 serializer can write and every parser reads back.

    ElementTree escapes markup (``<``, ``&``, quotes, and newlines in attributes) but
    writes characters that XML 1.0 forbids, which makes the whole document unreadable;
    those are replaced by visible escapes.  With ``keep_newlines=False`` (an attribute
    meant as one line, like a test case name) line breaks and tabs are escaped too.
    """
    text = _XML_BAD.sub(_escape_char, text)
    if not keep_newlines:
        text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(text: str) -> str:
    """A string that ``json.dumps(..., ensure_ascii=False)`` output can be encoded as UTF-8.

    JSON itself escapes controls; a lone surrogate, though, is written raw and makes
    writing the report fail.  SARIF viewers also render the message: other invisible
    characters are left to them, since the JSON string is a single field regardless.
    """
    return _SURROGATE.sub(_escape_char, text)


# GitHub Flavored Markdown: characters that start emphasis, links, images, HTML, code,
# strike-through, headings or table cells; backslash-escaping them is always literal.
_MD_PUNCT = re.compile(r"([\\`*_\[\]{}()#+!|~])")


def markdown_cell(text: str) -> str:
    """Prose in a Markdown table cell: literal text, one cell, no markup, no mention.

    Markup characters are backslash-escaped, HTML is written as entities (a value
    cannot open ``<details>`` or load an ``<img>``), ``@`` cannot ping a team, and a
    newline or ``|`` cannot end the cell or the row.
    """
    text = visible(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    # a word joiner after @ keeps "@org/team" from becoming a mention
    return text.replace("@", "@\u2060")


def markdown_code(text: str) -> str:
    """A value as an inline code span inside a Markdown table cell.

    Inside a code span nothing renders (no links, HTML or mentions); the fence is one
    backtick longer than the longest run inside, and ``|`` is written ``\\|``, which GFM
    tables turn back into ``|`` inside the span.
    """
    text = visible(text).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if not text:
        return "` `"
    # a space on each side is stripped again by the renderer; needed next to a backtick,
    # and kept when the content starts and ends with a space (which would be stripped)
    edge = text.startswith("`") or text.endswith("`") or (
        text.startswith(" ") and text.endswith(" ") and text.strip())
    pad = " " if edge else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def yaml_comment(text: str) -> str:
    """Text for a ``#`` comment in a generated YAML file: one line, nothing after it."""
    return visible(text)


def tsv_field(text: str) -> str:
    """One field of a tab-separated file: no tab or line break can shift columns or rows."""
    return visible(text)
