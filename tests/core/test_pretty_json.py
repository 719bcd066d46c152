"""``pretty_json`` writes exactly what the standard library writes, whatever the value."""

from __future__ import annotations

import json
import math
import random
import struct
from collections import OrderedDict

import pytest

from kitchen_gitops.json_types import pretty_json
from kitchen_gitops.observability import _exact_json


def _stdlib(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


EDGES: list[object] = [
    {"b": [1, 2.5, {"z": "é\u2028\x01\t\"\\/", "a": None}], "a": True, "c": {}, "d": [], "e": "𝄞"},
    {"tiny": 1e-05, "huge": 1e16, "mid": 1e15, "edge": 0.0001, "neg": -0.0, "big": 9999999999999998.0},
    {"nan": math.nan}, {"inf": -math.inf},
    {"beyond 64 bits": 2**70}, {"surrogate": "\ud800"},
    {"tuple": (1, 2)}, OrderedDict(b=1, a=2), {1: "an int key"}, {"set": [True, False, 0, 1]},
    [], {}, "plain", 3, None,
]


@pytest.mark.parametrize("value", EDGES, ids=range(len(EDGES)))
def test_the_same_text_as_the_standard_library(value: object) -> None:
    assert pretty_json(value) == _stdlib(value)


def test_random_floats_are_written_as_repr_writes_them() -> None:
    rng = random.Random(7)
    floats = [rng.uniform(1, 10) * 10.0 ** rng.randint(-8, 20) for _ in range(3000)]
    floats += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(3000)]
    for chunk in range(0, len(floats), 500):
        value = {"values": floats[chunk:chunk + 500], "nested": {"x": floats[chunk]}}
        assert pretty_json(value) == _stdlib(value)


def test_a_json_copy_only_where_json_gives_the_value_back() -> None:
    assert _exact_json([{"a": [1, 2.5, "x"]}]) is not None
    for value in ([(1, 2)], [math.nan], [{1: "a"}], [{"a": {1, 2}}]):
        assert _exact_json(value) is None
