"""Sink escaping: each function keeps hostile text inside the one field it is put in.

Examples first (what a reader sees), then properties over many generated strings
made of exactly the characters that break sinks, with a fixed seed.
"""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET

import pytest

from kitchen_gitops import escape

HOSTILE = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e",
           "\u2066", "\ufeff", "\ufffe", "\ud800", "\udfff", "%", ":", ",", "|", "`", "<", ">", "&",
           "\\", "@", "[", "]", "(", ")", "!", "*", "_", "#", "-", "---", "::error::", "a", "é", "漢",
           "🙂", " "]


def _strings(count: int = 400, seed: int = 14) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(HOSTILE) for _ in range(rnd.randint(0, 12))) for _ in range(count)]


@pytest.mark.parametrize(("text", "shown"), [
    ("plain", "plain"),
    ("a\nb", "a\\nb"),
    ("red \x1b[31mX\x1b[0m", "red \\e[31mX\\e[0m"),
    ("csi \x9b31m", "csi \\x9b31m"),
    ("tab\there", "tab\\there"),
    ("nul\x00", "nul\\x00"),
    ("rtl \u202eevil", "rtl \\u202eevil"),
    ("sep\u2028x", "sep\\u2028x"),
    ("lone \ud800", "lone \\ud800"),
    ("é 漢 🙂 back\\slash", "é 漢 🙂 back\\slash"),
])
def test_visible_examples(text: str, shown: str) -> None:
    assert escape.visible(text) == shown
    assert escape.terminal(text) == shown


def test_terminal_keeps_newlines_only_when_asked() -> None:
    assert escape.terminal("a\x1b[2J\nb", keep_newlines=True) == "a\\e[2J\nb"


def test_invisible_characters_lists_each_once() -> None:
    assert escape.invisible_characters("a\nb\n\x1b") == ["\n", "\x1b"]
    assert escape.invisible_characters("clean: é") == []


def test_github_message_examples() -> None:
    forged = "x\n::error file=evil.yaml,line=1::forged"
    assert escape.github_message(forged) == "x%0A::error file=evil.yaml,line=1::forged"
    assert escape.github_message("100%\r\n") == "100%25%0D%0A"
    assert escape.github_message("\x1b[31m") == "\\e[31m"


def test_github_log_runs_no_command() -> None:
    """Plain log lines between stop-commands and its token: no line, whatever it holds,
    is read as a command, and none can end the block (the token hashes the lines)."""
    lines = ["ok", "  ::error file=a.py::forged", "x\n::warning::y", "##[error]z"]
    out = escape.github_log(lines)
    token = out[0].removeprefix("::stop-commands::")
    assert out[0] != token and out[-1] == f"::{token}::"
    assert out[1:-1] == ["ok", "  ::error file=a.py::forged", "x\\n::warning::y", "##[error]z"]
    assert escape.github_log(lines) == out
    assert escape.github_log([*lines, f"::{token}::"])[0] != out[0]


def test_github_property_examples() -> None:
    assert escape.github_property("catalog/a:b,c.yaml") == "catalog/a%3Ab%2Cc.yaml"
    assert escape.github_property("x\n::warning::y") == "x\\n%3A%3Awarning%3A%3Ay"
    assert escape.github_property("50%") == "50%25"


def test_xml_text_examples() -> None:
    assert escape.xml_text("bell\x07 ok\n") == "bell\\x07 ok\n"
    assert escape.xml_text("line\nnext", keep_newlines=False) == "line\\nnext"
    assert escape.xml_text("\ufffe\ud800") == "\\ufffe\\ud800"


def test_json_text_example() -> None:
    assert escape.json_text("a\ud83d") == "a\\ud83d"
    assert escape.json_text("🙂\n") == "🙂\n"


def test_markdown_examples() -> None:
    assert escape.markdown_cell("a | b\nc") == "a \\| b\\\\nc"
    assert escape.markdown_cell("<img src=x>") == "&lt;img src=x&gt;"
    assert escape.markdown_cell("![p](http://t/x)") == "\\!\\[p\\]\\(http://t/x\\)"
    assert escape.markdown_cell("@org/security") == "@\u2060org/security"
    assert escape.markdown_code("a|b") == "`a\\|b`"
    assert escape.markdown_code("x``y") == "```x``y```"
    assert escape.markdown_code("`x") == "`` `x ``"
    assert escape.markdown_code("") == "` `"


def test_yaml_comment_and_tsv_field_stay_on_one_line() -> None:
    assert escape.yaml_comment("a.yaml\n---\nkind: Secret") == "a.yaml\\n---\\nkind: Secret"
    assert escape.tsv_field("a\tb\nc") == "a\\tb\\nc"


# ---------------------------------------------------------------- properties

_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def test_one_line_sinks_hold_one_line() -> None:
    for text in _strings():
        for out in (escape.visible(text), escape.terminal(text), escape.yaml_comment(text),
                    escape.tsv_field(text), escape.github_property(text), escape.github_message(text)):
            assert not _LINE_BREAKS.search(out), repr(out)
            assert not _CONTROLS.search(out), repr(out)
            out.encode("utf-8")  # no lone surrogate left
        assert "\t" not in escape.tsv_field(text)



def test_github_properties_cannot_end_or_add_a_property() -> None:
    for text in _strings():
        prop = escape.github_property(text)
        assert ":" not in prop and "," not in prop
        line = f"::error file={prop},title={prop}::{escape.github_message(text)}"
        head, sep, message = line[2:].partition("::")
        assert sep and head == f"error file={prop},title={prop}"
        # the runner decodes %0A, %0D and %25: the message comes back with its line breaks
        decoded = message.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
        assert decoded.replace("\n", "").replace("\r", "") == escape.visible(
            text.replace("\n", "").replace("\r", ""))



def test_xml_round_trip() -> None:
    for text in _strings():
        root = ET.Element("testcase", name=escape.xml_text(text, keep_newlines=False))
        root.text = escape.xml_text(text)
        data = ET.tostring(root, encoding="utf-8")
        parsed = ET.fromstring(data)  # a parse error here is the JUnit file CI cannot read
        assert parsed.get("name") == escape.xml_text(text, keep_newlines=False)
        assert "\n" not in (parsed.get("name") or "")



def test_json_round_trip() -> None:
    for text in _strings():
        dumped = json.dumps({"m": escape.json_text(text)}, ensure_ascii=False)
        assert json.loads(dumped.encode("utf-8").decode("utf-8"))["m"] == escape.json_text(text)



def test_markdown_cells_stay_in_their_cell() -> None:
    for text in _strings():
        for cell in (escape.markdown_cell(text), escape.markdown_code(text)):
            assert "\n" not in cell and "\r" not in cell
            # every | is escaped, so a table row keeps its column count
            assert not re.search(r"(?<!\\)\|", cell), cell
            assert "<" not in escape.markdown_cell(text)
        code = escape.markdown_code(text)
        fence = re.match(r"`+", code)
        assert fence is not None and code.endswith(fence.group(0))
        assert fence.group(0) not in code[len(fence.group(0)):-len(fence.group(0))]

