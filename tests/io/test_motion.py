"""AMASS-style npz and BVH exports, checked against the body model's own kinematics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from comotion.io.bvh import JOINT_NAMES, hold_to_frames, skeleton_motion, write_bvh
from comotion.io.motion import CAMERA_TO_Y_UP, CAMERA_TO_Z_UP, reorient_body, write_amass
from tests.io.io_fixtures import random_pose


def track(num_frames: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    betas = torch.randn(10, generator=g)
    pose = random_pose(num_frames, seed=seed)
    trans = torch.tensor([0.3, -0.2, 5.0]) + torch.cumsum(torch.randn(num_frames, 3, generator=g) * 0.05, 0)
    return betas, pose, trans


def test_reorient_moves_every_joint_rigidly(tiny_body):
    betas, pose, trans = track()
    betas = betas.expand(len(pose), -1)
    new_pose, new_trans = reorient_body(tiny_body, betas, pose, trans, CAMERA_TO_Z_UP)
    before = tiny_body(betas, pose, trans).joints
    after = tiny_body(betas, new_pose, new_trans).joints
    C = torch.as_tensor(CAMERA_TO_Z_UP, dtype=torch.float32)
    torch.testing.assert_close(after, before @ C.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(new_pose[:, 3:], pose[:, 3:])


def test_amass_file_fields(tmp_path, tiny_body):
    betas, pose, trans = track(8)
    frames = np.arange(3, 11)
    write_amass(tmp_path / "t.npz", tiny_body, betas.numpy(), pose.numpy(), trans.numpy(), frames, fps=12.5)
    data = np.load(tmp_path / "t.npz")
    assert data["poses"].shape == (8, 72) and data["trans"].shape == (8, 3) and data["betas"].shape == (10,)
    assert float(data["mocap_framerate"]) == 12.5
    np.testing.assert_array_equal(data["frame_indices"], frames)
    assert str(data["gender"]) == "neutral" and str(data["surface_model_type"]) == "tiny-test-body"
    # Feet down: in the z-up world the head is above the pelvis for an upright person.
    joints = tiny_body(betas, torch.as_tensor(data["poses"]), torch.as_tensor(data["trans"])).joints
    camera = tiny_body(betas, pose, trans).joints
    torch.testing.assert_close(
        joints, camera @ torch.as_tensor(data["camera_to_world"], dtype=torch.float32).T, atol=1e-5, rtol=0
    )


# ----------------------------------------------------------------------------------------------
# BVH, parsed back by an independent reader


def parse_bvh(text: str):
    """Minimal BVH reader: joints (name, parent, offset, channels) and the motion matrix."""
    tokens = text.split()
    joints, stack, i = [], [], 0
    while tokens[i] != "MOTION":
        token = tokens[i]
        if token in ("ROOT", "JOINT"):
            joints.append({"name": tokens[i + 1], "parent": stack[-1] if stack else -1})
            i += 2
        elif token == "End":
            joints.append({"name": None, "parent": stack[-1]})
            i += 2
        elif token == "{":
            stack.append(len(joints) - 1)
            i += 1
        elif token == "}":
            stack.pop()
            i += 1
        elif token == "OFFSET":
            joints[-1]["offset"] = np.array([float(v) for v in tokens[i + 1 : i + 4]])
            i += 4
        elif token == "CHANNELS":
            count = int(tokens[i + 1])
            joints[-1]["channels"] = tokens[i + 2 : i + 2 + count]
            i += 2 + count
        else:
            i += 1
    num_frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    motion = np.array([float(v) for v in tokens[i + 6 :]]).reshape(num_frames, -1)
    return joints, num_frames, frame_time, motion


def bvh_positions(joints, motion):
    """World positions ``(T, J, 3)`` of the real joints (end sites skipped), in file order."""
    num_frames = motion.shape[0]
    rotation = [None] * len(joints)
    position = [None] * len(joints)
    column = 0
    for j, joint in enumerate(joints):
        if joint["name"] is None:
            continue
        values = {}
        for channel in joint["channels"]:
            values[channel] = motion[:, column]
            column += 1
        local = np.tile(np.eye(3), (num_frames, 1, 1))
        for channel in joint["channels"]:
            if channel.endswith("rotation"):
                local = (
                    local @ Rotation.from_euler(channel[0].lower(), values[channel][:, None], degrees=True).as_matrix()
                )
        if joint["parent"] < 0:
            offset = joint["offset"] + np.stack([values["Xposition"], values["Yposition"], values["Zposition"]], 1)
            position[j], rotation[j] = offset, local
        else:
            p = joint["parent"]
            position[j] = position[p] + (rotation[p] @ joint["offset"][:, None])[..., 0]
            rotation[j] = rotation[p] @ local
    return np.stack([position[j] for j, joint in enumerate(joints) if joint["name"] is not None], axis=1)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_bvh_round_trip_matches_body_joints(tmp_path, tiny_body, scale):
    betas, pose, trans = track(15)
    path = tmp_path / "track.bvh"
    write_bvh(path, [skeleton_motion(tiny_body, betas.numpy(), pose.numpy(), trans.numpy())], fps=25.0, scale=scale)
    joints, num_frames, frame_time, motion = parse_bvh(path.read_text())
    real = [j for j in joints if j["name"] is not None]
    assert len(real) == 24 and num_frames == 15 and frame_time == pytest.approx(0.04)
    assert sorted(j["name"] for j in real) == sorted(JOINT_NAMES)
    assert len([j for j in joints if j["name"] is None]) == 5  # feet, head, hands
    assert motion.shape == (15, 6 + 3 * 23)
    positions = bvh_positions(joints, motion) / scale
    order = [JOINT_NAMES.index(j["name"]) for j in real]
    expected = tiny_body(betas.expand(15, -1), pose, trans).joints.double().numpy() @ CAMERA_TO_Y_UP.T
    np.testing.assert_allclose(positions, expected[:, order], atol=2e-4)
    # Offsets are the rest skeleton of this track's shape.
    rest = tiny_body.rest_joints(betas).double().numpy()
    left_knee = next(j for j in real if j["name"] == "left_knee")
    np.testing.assert_allclose(left_knee["offset"] / scale, rest[4] - rest[1], atol=1e-5)


def test_bvh_euler_angles_are_continuous(tmp_path, tiny_body):
    # A root spinning one full turn about the vertical axis must not jump by 360 degrees.
    angles = np.linspace(0, 2 * np.pi, 40)
    root = Rotation.from_rotvec(np.stack([np.zeros(40), angles, np.zeros(40)], 1)) * Rotation.from_rotvec([np.pi, 0, 0])
    pose = np.zeros((40, 72))
    pose[:, :3] = root.as_rotvec()
    path = tmp_path / "spin.bvh"
    write_bvh(path, [skeleton_motion(tiny_body, np.zeros(10), pose, np.tile([0, 0, 3.0], (40, 1)))], fps=30)
    _, _, _, motion = parse_bvh(path.read_text())
    assert np.abs(np.diff(motion[:, 3:6], axis=0)).max() < 20.0


def test_multi_root_bvh(tmp_path, tiny_body):
    frames = np.arange(10)
    skeletons = []
    for track_id, seed in [(1, 0), (7, 1)]:
        betas, pose, trans = track(10, seed)
        skeletons.append(skeleton_motion(tiny_body, betas.numpy(), pose.numpy(), trans.numpy(), name=f"t{track_id}_"))
    path = tmp_path / "all.bvh"
    write_bvh(path, skeletons, fps=10)
    joints, num_frames, _, motion = parse_bvh(path.read_text())
    names = [j["name"] for j in joints if j["name"] is not None]
    assert len(names) == 48 and names[0] == "t1_pelvis" and names[24] == "t7_pelvis"
    assert num_frames == len(frames) and motion.shape[1] == 2 * (6 + 69)
    assert sum(1 for j in joints if j["parent"] == -1) == 2


def test_hold_to_frames_repeats_nearest_known_values():
    values = np.array([10.0, 20.0, 30.0])
    known = np.array([2, 3, 6])
    np.testing.assert_array_equal(hold_to_frames(values, known, np.arange(9)), [10, 10, 10, 20, 20, 20, 30, 30, 30])
