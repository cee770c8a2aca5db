"""Reading body models from disk: the packaged free models, SMPL pickles (no chumpy) and npz files.

The licensed SMPL pickles reference ``chumpy`` classes.  They are read here with an unpickler
that turns those objects into plain arrays, so chumpy never needs to be installed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from comotion.body.model import BodyModel
from comotion.errors import InputError

DATA_DIR = Path(__file__).parent / "data"
BUILTIN_BODY_MODELS = {"anny": "anny.npz", "anny-lowres": "anny_lowres.npz"}
SMPL_FILE_NAMES = ("SMPL_NEUTRAL.pkl", "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl", "SMPL_NEUTRAL.npz")
# Mesh vertices CoMotion uses as face keypoints on the 6890-vertex SMPL topology:
# nose, right eye, left eye, right ear, left ear.
SMPL_FACE_VERTICES = (332, 6260, 2800, 4071, 583)
SMPL_NUM_VERTICES = 6890

SMPL_HELP = (
    "SMPL is licensed and not shipped: register at https://smpl.is.tue.mpg.de, download "
    "SMPL v1.1.0 and pass the neutral model (basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl, "
    "SMPL_NEUTRAL.pkl or an .npz conversion) as --body-model PATH, or use the free default 'anny'"
)


class _ChumpyObject:
    """Stand-in for chumpy classes while unpickling: keeps the pickled state, exposes ``x``."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


class _ChumpyFreeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyObject
        return super().find_class(module, name)


def _as_array(value, field: str, path: Path) -> np.ndarray:
    if isinstance(value, _ChumpyObject):
        if "x" not in value.__dict__:
            raise InputError(f"{path}: field '{field}' is a chumpy expression that cannot be read without chumpy")
        value = value.__dict__["x"]
    if hasattr(value, "toarray"):  # scipy.sparse
        value = value.toarray()
    return np.asarray(value)


def read_smpl_pickle(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an SMPL ``.pkl`` (latin-1 pickle, chumpy objects and sparse matrices densified)."""
    try:
        with open(path, "rb") as f:
            raw = _ChumpyFreeUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as err:
        raise InputError(f"{path}: not a readable SMPL pickle ({type(err).__name__}: {err}). {SMPL_HELP}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not an SMPL model file (expected a dict, got {type(raw).__name__}). {SMPL_HELP}")
    return {k: _as_array(v, k, path) for k, v in raw.items() if k in _SMPL_FIELDS}


_SMPL_FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


def _require(arrays: dict, fields, path: Path) -> None:
    missing = [f for f in fields if f not in arrays]
    if missing:
        raise InputError(f"{path}: not an SMPL-layout body model, missing field(s) {', '.join(missing)}. {SMPL_HELP}")


def _smpl_arrays_to_model(arrays: dict, path: Path, coco_regressor, name: str) -> BodyModel:
    _require(arrays, ("v_template", "shapedirs", "J_regressor", "weights", "kintree_table"), path)
    v_template = torch.from_numpy(np.asarray(arrays["v_template"], dtype=np.float32))
    num_vertices = v_template.shape[0]
    if num_vertices != SMPL_NUM_VERTICES:
        raise InputError(f"{path}: SMPL model has {num_vertices} vertices, expected {SMPL_NUM_VERTICES}")
    shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float32)[:, :, :10]
    posedirs = arrays.get("posedirs")
    parents = np.asarray(arrays["kintree_table"])[0].astype(np.int64)
    parents[0] = -1
    face_regressor = torch.zeros(len(SMPL_FACE_VERTICES), num_vertices)
    face_regressor[torch.arange(len(SMPL_FACE_VERTICES)), torch.tensor(SMPL_FACE_VERTICES)] = 1.0
    faces = arrays.get("f")
    return BodyModel(
        v_template=v_template,
        shapedirs=torch.from_numpy(np.ascontiguousarray(shapedirs)),
        J_regressor=torch.from_numpy(np.asarray(arrays["J_regressor"], dtype=np.float32)),
        weights=torch.from_numpy(np.asarray(arrays["weights"], dtype=np.float32)),
        parents=parents.tolist(),
        faces=torch.zeros(0, 3, dtype=torch.long) if faces is None else torch.from_numpy(np.asarray(faces, dtype=np.int64)),
        keypoint_regressor=face_regressor,
        coco_regressor=_coco_regressor(coco_regressor, num_vertices),
        posedirs=None if posedirs is None else torch.from_numpy(np.asarray(posedirs, dtype=np.float32)),
        name=name,
    )


def _coco_regressor(value, num_vertices: int) -> torch.Tensor | None:
    """Accepts ``(17, V)`` or ``(V, 17)`` arrays, or the official ``extra_smpl_reference.pt`` path."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"COCO regressor file not found: {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for corrupt files
            raise InputError(f"{path}: cannot read COCO regressor ({type(err).__name__})") from None
        if not isinstance(data, dict) or "coco_map" not in data:
            raise InputError(f"{path}: expected a dict with 'coco_map' (the official extra_smpl_reference.pt)")
        value = data["coco_map"]
    regressor = torch.as_tensor(value, dtype=torch.float32)
    if regressor.shape == (num_vertices, 17):
        regressor = regressor.T
    if regressor.shape != (17, num_vertices):
        raise InputError(f"COCO regressor has shape {tuple(regressor.shape)}, expected (17, {num_vertices})")
    return regressor.contiguous()


def _model_from_npz(path: Path, coco_regressor) -> BodyModel:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: not a readable .npz body model ({err})") from None
    if "keypoint_regressor" not in arrays:  # an SMPL .pkl converted to .npz
        return _smpl_arrays_to_model(arrays, path, coco_regressor, name=f"smpl:{path.name}")
    _require(arrays, ("v_template", "shapedirs", "J_regressor", "weights", "parents", "faces"), path)
    coco = arrays.get("coco_regressor") if coco_regressor is None else coco_regressor
    num_vertices = arrays["v_template"].shape[0]
    return BodyModel(
        v_template=torch.from_numpy(arrays["v_template"].astype(np.float32)),
        shapedirs=torch.from_numpy(arrays["shapedirs"].astype(np.float32)),
        J_regressor=torch.from_numpy(arrays["J_regressor"].astype(np.float32)),
        weights=torch.from_numpy(arrays["weights"].astype(np.float32)),
        parents=arrays["parents"].astype(np.int64).tolist(),
        faces=torch.from_numpy(arrays["faces"].astype(np.int64)),
        keypoint_regressor=torch.from_numpy(arrays["keypoint_regressor"].astype(np.float32)),
        coco_regressor=_coco_regressor(coco, num_vertices),
        posedirs=torch.from_numpy(arrays["posedirs"].astype(np.float32)) if "posedirs" in arrays else None,
        name=str(arrays["name"]) if "name" in arrays else path.stem,
    )


def load_body_model(
    name_or_path: str | Path = "anny",
    *,
    coco_regressor=None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> BodyModel:
    """Load a body model by name (``"anny"``, ``"anny-lowres"``) or from a file or folder.

    Args:
        name_or_path: a packaged model name, an SMPL ``.pkl``/``.npz`` file, a folder holding
            one (``SMPL_NEUTRAL.pkl``, ``basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl``), or an
            ``.npz`` in comotion's body-model format.
        coco_regressor: for SMPL, the COCO keypoint regressor: ``(6890, 17)``/``(17, 6890)``
            array or the path of the official ``extra_smpl_reference.pt`` (its ``coco_map``).
        device, dtype: where and in which precision to keep the buffers.
    """
    key = str(name_or_path)
    if key in BUILTIN_BODY_MODELS:
        path = DATA_DIR / BUILTIN_BODY_MODELS[key]
        if not path.is_file():
            raise InputError(f"packaged body model '{key}' is missing from the installation ({path})")
        model = _model_from_npz(path, coco_regressor)
    else:
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            candidates = [path / n for n in SMPL_FILE_NAMES if (path / n).is_file()]
            if not candidates:
                raise InputError(f"no SMPL model file ({', '.join(SMPL_FILE_NAMES)}) in folder {path}. {SMPL_HELP}")
            path = candidates[0]
        if not path.is_file():
            known = ", ".join(BUILTIN_BODY_MODELS)
            raise InputError(f"body model '{name_or_path}' is neither a packaged model ({known}) nor an existing file. {SMPL_HELP}")
        if path.suffix == ".npz":
            model = _model_from_npz(path, coco_regressor)
        elif path.suffix == ".pkl":
            model = _smpl_arrays_to_model(read_smpl_pickle(path), path, coco_regressor, name=f"smpl:{path.name}")
        else:
            raise InputError(f"{path}: unknown body model format '{path.suffix}' (expected .pkl or .npz)")
    return model.to(device=device, dtype=dtype)
