"""SMPL kinematics against the reference (parity ``smpl_kinematics.pt`` with the fake SMPL file)."""

import pytest
import torch

from comotion.body import load_body_model
from comotion.geometry import axis_angle_to_matrix

ATOL = 1e-5


@pytest.fixture(scope="module")
def smpl(fake_smpl_path, official_data_dir):
    return load_body_model(fake_smpl_path, coco_regressor=official_data_dir / "extra_smpl_reference.pt")


@pytest.fixture(scope="module")
def reference(parity_dir):
    return torch.load(parity_dir / "smpl_kinematics.pt", weights_only=True)


def test_rotation_matrices(reference):
    n = reference["pose"].shape[0]
    rot = axis_angle_to_matrix(reference["pose"].reshape(n, 24, 3))
    torch.testing.assert_close(rot, reference["rotmats"], rtol=0, atol=ATOL)


def test_all_output_formats(smpl, reference):
    out = smpl(reference["betas"], reference["pose"], reference["trans"], coco=True, vertices="all")
    torch.testing.assert_close(out.joints, reference["joints"], rtol=0, atol=ATOL)
    torch.testing.assert_close(out.keypoints, reference["joints_face"], rtol=0, atol=ATOL)
    torch.testing.assert_close(out.coco, reference["joints_coco"], rtol=0, atol=ATOL)
    torch.testing.assert_close(out.vertices, reference["mesh"], rtol=0, atol=ATOL)


def test_without_translation_and_subsampled_mesh(smpl, reference):
    out = smpl(reference["betas"], reference["pose"], vertices=20)
    torch.testing.assert_close(out.joints, reference["joints_no_trans"], rtol=0, atol=ATOL)
    shifted = smpl(reference["betas"], reference["pose"], reference["trans"], vertices=20)
    torch.testing.assert_close(shifted.vertices, reference["mesh_subsample20"], rtol=0, atol=ATOL)
    torch.testing.assert_close(shifted.keypoints, reference["joints_face"], rtol=0, atol=ATOL)


def test_two_batch_dims(smpl, reference):
    batched = reference["batched"]
    keypoints = smpl.keypoints(batched["betas"], batched["pose"], batched["trans"])
    torch.testing.assert_close(keypoints, batched["joints_face"], rtol=0, atol=ATOL)


def test_float64_and_gradients(fake_smpl_path, reference):
    smpl64 = load_body_model(fake_smpl_path, dtype=torch.float64)
    pose = reference["pose"].double().requires_grad_(True)
    out = smpl64(reference["betas"].double(), pose, reference["trans"].double())
    assert out.keypoints.dtype == torch.float64
    torch.testing.assert_close(out.keypoints.float(), reference["joints_face"], rtol=0, atol=ATOL)
    out.keypoints.sum().backward()
    assert pose.grad is not None and torch.isfinite(pose.grad).all()
