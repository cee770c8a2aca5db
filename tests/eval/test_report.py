"""Table and JSON rendering of evaluation results."""

from __future__ import annotations

import json
import math

import numpy as np

from comotion.eval.report import Column, results_json, results_table


def test_json_nan_becomes_null_and_numpy_scalars_become_numbers():
    text = results_json({"mota": np.float64(0.5), "motp": math.nan, "num_misses": np.int64(3)}, {"a": {"idp": float("nan")}})
    data = json.loads(text)
    assert data == {"overall": {"mota": 0.5, "motp": None, "num_misses": 3}, "per_sequence": {"a": {"idp": None}}}


def test_table_formats_percent_int_and_spec():
    columns = [Column("MOTA", "mota"), Column("FP", "num_false_positives", "int"), Column("MOTP", "motp", ".3f")]
    table = results_table({"mota": -0.1222, "num_false_positives": 157, "motp": math.nan},
                          {"seq": {"mota": 0.6435, "num_false_positives": 15, "motp": 0.16314}}, columns)  # fmt: skip
    header, row, overall = table.splitlines()
    assert header.split() == ["MOTA", "FP", "MOTP"]
    assert row.split() == ["seq", "64.3", "15", "0.163"]
    assert overall.split() == ["OVERALL", "-12.2", "157", "nan"]
