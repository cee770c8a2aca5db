"""Loading body models: SMPL pickles without chumpy, npz conversions, clear errors."""

import pickle
import sys
import types

import numpy as np
import pytest
import torch

from comotion.body import load_body_model, read_smpl_pickle
from comotion.errors import InputError


def _tiny_smpl_arrays(seed=0):
    rng = np.random.default_rng(seed)
    v = 6890
    weights = rng.random((v, 24)).astype(np.float32)
    return {
        "v_template": rng.normal(size=(v, 3)).astype(np.float32),
        "shapedirs": rng.normal(size=(v, 3, 10)).astype(np.float32) * 0.01,
        "posedirs": rng.normal(size=(v, 3, 207)).astype(np.float32) * 0.01,
        "J_regressor": (rng.random((24, v)) / v).astype(np.float32),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.stack([np.r_[4294967295, np.arange(23)], np.arange(24)]).astype(np.int64),
        "f": rng.integers(0, v, size=(20, 3)),
    }


def test_chumpy_pickle_loads_without_chumpy(tmp_path, monkeypatch):
    """A pickle whose arrays are chumpy objects (as in the official SMPL files) reads as arrays."""
    arrays = _tiny_smpl_arrays()

    class Ch:  # what chumpy's Ch pickles as: an object whose state holds the array in 'x'
        def __init__(self, x):
            self.x = x

    fake = types.ModuleType("chumpy.ch")
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", fake)
    content = dict(arrays, shapedirs=Ch(arrays["shapedirs"]), v_template=Ch(arrays["v_template"]))
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(content, protocol=2))
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")

    loaded = read_smpl_pickle(path)
    np.testing.assert_array_equal(loaded["shapedirs"], arrays["shapedirs"])
    body = load_body_model(path)
    torch.testing.assert_close(body.v_template, torch.from_numpy(arrays["v_template"]))
    assert body.parents[0] == -1 and body.parents[1:] == list(range(23))


def test_npz_conversion_equals_pickle(tmp_path):
    arrays = _tiny_smpl_arrays(1)
    (tmp_path / "a").mkdir()
    pkl = tmp_path / "a" / "SMPL_NEUTRAL.pkl"
    pkl.write_bytes(pickle.dumps(arrays))
    npz = tmp_path / "smpl.npz"
    np.savez(npz, **arrays)
    betas, pose = torch.randn(3, 10), torch.randn(3, 72) * 0.3
    from_folder = load_body_model(tmp_path / "a")  # a folder holding SMPL_NEUTRAL.pkl
    from_npz = load_body_model(npz)
    torch.testing.assert_close(from_folder(betas, pose).keypoints, from_npz(betas, pose).keypoints)


def test_missing_file_error_names_file_and_help(tmp_path):
    with pytest.raises(InputError) as err:
        load_body_model(tmp_path / "nope.pkl")
    message = str(err.value)
    assert "nope.pkl" in message and "smpl.is.tue.mpg.de" in message and "\n" not in message


def test_corrupt_and_wrong_files(tmp_path):
    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(InputError, match="SMPL_NEUTRAL.pkl"):
        load_body_model(bad)
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps({"v_template": np.zeros((6890, 3))}))
    with pytest.raises(InputError, match="missing field"):
        load_body_model(wrong)
    with pytest.raises(InputError, match="unknown body model format"):
        (tmp_path / "model.obj").write_text("v 0 0 0")
        load_body_model(tmp_path / "model.obj")


def test_wrong_coco_regressor_shape(tmp_path):
    arrays = _tiny_smpl_arrays(2)
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(arrays))
    with pytest.raises(InputError, match="COCO regressor"):
        load_body_model(path, coco_regressor=np.zeros((17, 10)))
