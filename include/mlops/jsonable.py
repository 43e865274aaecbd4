"""One rule for turning results into strict JSON values (reports, XComs, MLflow and Optuna attrs).

- mappings become dicts with ``str`` keys; lists and tuples become lists;
- numpy scalars become Python numbers, numpy arrays lists (by duck typing, so this
  module imports nothing heavy);
- NaN and ±infinity become ``None`` (JSON ``null``): JSON has no NaN, and a reader
  (the UI, a browser, ``json.loads(..., parse_constant=...)``, Postgres ``jsonb``) must
  never meet the non-standard ``NaN`` token ``json.dumps`` writes by default. A metric that
  is undefined (ROC-AUC of a one-class window) is *missing*, which is what ``null`` says;
- anything else JSON cannot hold (a date, a ``Path``, a class) becomes ``str(value)``.

``json.dumps(jsonable(x), allow_nan=False)`` therefore never raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, NaN/inf as ``None`` (see the module docstring)."""
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, float):  # numpy.float64 too (a float subclass)
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str | int):  # numpy.str_, IntEnum, ...: the plain value
        return str(value) if isinstance(value, str) else int(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        # numpy scalars (tolist() gives the Python scalar) and arrays (nested lists).
        return jsonable(value.tolist())
    return str(value)
