"""Printing evaluation results: a fixed-width table, or a JSON object.

Both ``comotion eval track`` and ``comotion eval pose`` print ``{"overall": {...}, "per_sequence":
{"<name>": {...}}}`` with ``--json`` (NaN as ``null``) and otherwise a table with one row per
sequence and an ``OVERALL`` row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    """A table column: header, metric key and format (``"percent"``, ``"int"`` or a format spec)."""

    header: str
    key: str
    style: str = "percent"

    def format(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "nan"
        if self.style == "percent":
            return f"{100.0 * float(value):.1f}"
        if self.style == "int":
            return str(int(value))
        return format(float(value), self.style)


def json_value(value):
    """JSON-ready value: NaN -> None, numpy scalars/arrays -> Python numbers/lists."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.ndarray):
        return [json_value(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def results_json(overall: Mapping, per_sequence: Mapping[str, Mapping]) -> str:
    """The ``{"overall": ..., "per_sequence": ...}`` JSON text (strict JSON: no NaN)."""
    data = {"overall": json_value(overall), "per_sequence": {name: json_value(m) for name, m in per_sequence.items()}}
    return json.dumps(data, indent=2, allow_nan=False)


def results_table(overall: Mapping, per_sequence: Mapping[str, Mapping], columns: list[Column]) -> str:
    """A fixed-width text table: one row per sequence, then ``OVERALL``."""
    rows = [(name, metrics) for name, metrics in per_sequence.items()] + [("OVERALL", overall)]
    cells = [[name] + [c.format(m.get(c.key)) for c in columns] for name, m in rows]
    header = [""] + [c.header for c in columns]
    widths = [max(len(r[i]) for r in cells + [header]) for i in range(len(header))]
    lines = [" ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines += [" ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in cells]
    return "\n".join(lines)
