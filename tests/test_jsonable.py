"""The one JSON rule: plain types, numpy unwrapped, NaN/inf as null, the rest as text."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np

from include.mlops.jsonable import jsonable


def test_nan_and_infinity_become_null_so_strict_json_never_fails() -> None:
    value = {"a": float("nan"), "b": np.float64("inf"), "c": [-math.inf, 1.5], "d": np.nan}
    out = jsonable(value)
    assert out == {"a": None, "b": None, "c": [None, 1.5], "d": None}
    json.dumps(out, allow_nan=False)


def test_numpy_scalars_and_arrays_become_plain_python() -> None:
    out = jsonable({"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True),
                    "s": np.str_("x"), "a": np.array([[1, 2], [3, 4]])})  # fmt: skip
    assert out == {"i": 3, "f": 0.5, "b": True, "s": "x", "a": [[1, 2], [3, 4]]}
    assert [type(out[k]) for k in ("i", "f", "b", "s")] == [int, float, bool, str]


def test_keys_become_text_tuples_lists_and_the_rest_str() -> None:
    out = jsonable({1: (1, "a"), "when": dt.date(2026, 11, 3), "path": Path("/x/y")})
    assert out == {"1": [1, "a"], "when": "2026-11-03", "path": "/x/y"}
    assert jsonable(None) is None and jsonable(True) is True and jsonable("s") == "s"
