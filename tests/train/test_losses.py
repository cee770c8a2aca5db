import math

import torch

from comotion.train import losses


def _points(m=2, dims=2, seed=0):
    return torch.randn(m, 27, dims, generator=torch.Generator().manual_seed(seed))


def test_reprojection_zero_known_offset_and_mask():
    target = _points() * 50
    valid = torch.ones(2, 27, dtype=torch.bool)
    assert losses.reprojection_loss(target, target, valid, 100.0) == 0
    shifted = target + torch.tensor([3.0, -4.0])
    assert torch.isclose(losses.reprojection_loss(shifted, target, valid, 100.0), torch.tensor(0.07))
    # Masked points do not count, however wrong they are.
    shifted[1, :5] += 1000.0
    valid[1, :5] = False
    assert torch.isclose(losses.reprojection_loss(shifted, target, valid, 100.0), torch.tensor(0.07))
    assert losses.reprojection_loss(shifted, target, torch.zeros_like(valid), 100.0) == 0


def test_root_relative_joints_ignores_translation_and_masks_people():
    target = _points(dims=3)
    valid = torch.tensor([True, True])
    # A rigid translation leaves root-relative joints unchanged.
    assert losses.root_relative_joints_loss(target + torch.tensor([1.0, 2.0, 3.0]), target, valid) < 1e-6
    pred = target.clone()
    pred[:, 1:] += torch.tensor([0.01, 0.0, -0.02])  # every non-root point 3 cm off in L1
    expected = 0.03 * 26 / 27
    assert torch.isclose(losses.root_relative_joints_loss(pred, target, valid), torch.tensor(expected))
    pred[1] += _points(m=1, dims=3, seed=5)[0]
    assert torch.isclose(losses.root_relative_joints_loss(pred, target, torch.tensor([True, False])), torch.tensor(expected))


def test_joint_angle_loss_known_rotation():
    target = torch.zeros(1, 72)
    valid = torch.tensor([True])
    assert losses.joint_angle_loss(target, target, valid) == 0
    pred = torch.zeros(1, 72)
    angle = 0.3
    pred[0, 2] = angle  # root rotated about z: R - I = [[c-1, -s, 0], [s, c-1, 0], [0, 0, 0]]
    per_joint = 2 * (1 - math.cos(angle)) + 2 * math.sin(angle)
    assert torch.isclose(losses.joint_angle_loss(pred, target, valid), torch.tensor(per_joint / 24), atol=1e-6)
    assert losses.joint_angle_loss(pred, target, torch.tensor([False])) == 0


def test_joint_angle_loss_same_rotation_different_axis_angle():
    # Rotation by pi about x written with both signs is the same rotation: zero loss.
    a = torch.zeros(1, 72)
    b = torch.zeros(1, 72)
    a[0, 0], b[0, 0] = math.pi, -math.pi
    assert losses.joint_angle_loss(a, b, torch.tensor([True])) < 1e-6


def test_root_depth_loss_is_relative_and_uses_the_root():
    target = torch.zeros(3, 27, 3)
    target[..., 2] = torch.tensor([2.0, 8.0, 5.0])[:, None]
    pred = target.clone()
    pred[0, :, 2] *= 2.0  # twice as far: log 2
    pred[1, :, 2] /= 2.0  # half as far, four times further away in metres: also log 2
    pred[:, 1:, 2] += 3.0  # non-root points do not count
    valid = torch.tensor([True, True, False])
    assert torch.isclose(losses.root_depth_loss(pred, target, valid, min_depth=0.1), torch.tensor(math.log(2.0)))
    pred[0, 0, 2] = -1.0  # behind the camera: clamped at min_depth
    expected = (math.log(2.0 / 0.1) + math.log(2.0)) / 2
    assert torch.isclose(losses.root_depth_loss(pred, target, valid, min_depth=0.1), torch.tensor(expected))
    assert losses.root_depth_loss(pred, target, torch.zeros(3, dtype=torch.bool), min_depth=0.1) == 0


def test_box_loss_is_relative_to_the_target_height_and_clamped_to_the_image():
    target = torch.tensor([[[10.0, 20.0], [50.0, 120.0]], [[100.0, 100.0], [110.0, 120.0]], [[0.0, 0.0], [5.0, 5.0]]])
    pred = target.clone()
    pred[0, :, 0] += 10.0  # 10 px to the right: x1 and x2 off by 10 of a 100 px tall box
    pred[1, 1] += 4.0  # far corner 4 px out in x and y of a 20 px tall box
    valid = torch.tensor([True, True, False])
    expected = (10.0 * 2 / 4 / 100 + 4.0 * 2 / 4 / 20) / 2
    assert torch.isclose(losses.box_loss(pred, target, valid, image_size=256), torch.tensor(expected))
    # Beyond the image border nothing is compared (the evaluation's boxes are clamped), and a
    # box below min_height is divided by min_height.
    outside = target[1:2].clone()
    outside[0, 1, 0] = 300.0
    assert losses.box_loss(outside, target[1:2], valid[:1], image_size=256) > 0
    assert losses.box_loss(outside, outside + torch.tensor([[0.0, 0.0], [20.0, 0.0]]), valid[:1], image_size=256) == 0
    tiny = torch.tensor([[[0.0, 0.0], [2.0, 2.0]]])
    assert torch.isclose(losses.box_loss(tiny + 1.0, tiny, valid[:1], image_size=256), torch.tensor(1.0 / 8.0))
    assert losses.box_loss(pred, target, torch.zeros(3, dtype=torch.bool), image_size=256) == 0


def test_betas_loss():
    target = torch.zeros(3, 10)
    pred = torch.full((3, 10), 0.5)
    pred[2] = 10.0
    assert torch.isclose(losses.betas_loss(pred, target, torch.tensor([True, True, False])), torch.tensor(0.5))
    assert losses.betas_loss(pred, target, torch.zeros(3, dtype=torch.bool)) == 0


def test_confidence_loss_known_value_and_negative_sampling():
    logits = torch.tensor([0.0, 2.0, -1.0, 5.0])
    positives, negatives = torch.tensor([1]), torch.tensor([2, 3])
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0)) + math.log1p(math.exp(5.0))) / 3
    assert torch.isclose(losses.confidence_loss(logits, positives, negatives), torch.tensor(expected))
    drawn = losses.sample_negatives(10, torch.tensor([0, 4]), 5, torch.Generator().manual_seed(0))
    assert len(drawn) == 5 and len(set(drawn.tolist())) == 5
    assert not {0, 4} & set(drawn.tolist())
    # Asking for more negatives than exist gives all of them.
    assert sorted(losses.sample_negatives(4, torch.tensor([1]), 10, torch.Generator()).tolist()) == [0, 2, 3]


def test_keypoint_heatmaps_peak_and_width():
    keypoints = torch.zeros(1, 27, 2)
    keypoints[0, 3] = torch.tensor([20.0, 12.0])  # cell (x=2, y=1) centre at stride 8
    valid = torch.zeros(1, 27, dtype=torch.bool)
    valid[0, 3] = True
    maps = losses.keypoint_heatmaps(keypoints, valid, size=4, stride=8, sigma=1.0)
    assert maps.shape == (27, 4, 4)
    assert maps[3, 1, 2] == 1.0 and maps[3].argmax() == 1 * 4 + 2
    assert torch.isclose(maps[3, 1, 3], torch.tensor(math.exp(-0.5)))  # one cell away
    assert maps[:3].abs().sum() == 0 and maps[4:].abs().sum() == 0  # invalid points draw nothing
    assert losses.heatmap_loss(maps, maps) == 0
    assert torch.isclose(losses.heatmap_loss(maps + 0.5, maps), torch.tensor(0.25))


def test_keypoint_heatmaps_take_the_max_over_people():
    keypoints = torch.tensor([[[4.0, 4.0]], [[12.0, 4.0]]]).expand(2, 27, 2).clone()
    keypoints[1, :, 0] = 12.0
    valid = torch.ones(2, 27, dtype=torch.bool)
    maps = losses.keypoint_heatmaps(keypoints, valid, size=2, stride=8, sigma=1.0)
    assert torch.allclose(maps[:, 0, 0], torch.ones(27)) and torch.allclose(maps[:, 0, 1], torch.ones(27))


def test_attention_localization_loss_hand_made_cases():
    # One keypoint at the centre of cell (row 1, col 2) of a 4x4 grid with stride 8 (pixels 20, 12),
    # vanishing width: the target is that one cell, the loss is -log softmax there.
    keypoints = torch.zeros(1, 27, 2)
    keypoints[0, 0] = torch.tensor([20.0, 12.0])
    valid = torch.zeros(1, 27, dtype=torch.bool)
    valid[0, 0] = True
    logits = torch.zeros(1, 2, 16)
    assert math.isclose(losses.attention_localization_loss(logits, keypoints, valid, 4, 8, 0.01).item(), math.log(16), rel_tol=1e-6)
    logits[0, :, 1 * 4 + 2] = 5.0
    expected = -math.log(math.exp(5.0) / (math.exp(5.0) + 15))
    assert math.isclose(losses.attention_localization_loss(logits, keypoints, valid, 4, 8, 0.01).item(), expected, rel_tol=1e-6)
    # Looking at the wrong cell costs more; a person without valid keypoints is left out.
    wrong = torch.zeros(1, 2, 16)
    wrong[0, :, 0] = 5.0
    assert losses.attention_localization_loss(wrong, keypoints, valid, 4, 8, 0.01) > math.log(16)
    both = losses.attention_localization_loss(
        torch.cat([logits, wrong]), keypoints.repeat(2, 1, 1), torch.stack([valid[0], torch.zeros(27, dtype=torch.bool)]), 4, 8, 0.01
    )
    assert math.isclose(both.item(), expected, rel_tol=1e-6)
    assert losses.attention_localization_loss(logits, keypoints, torch.zeros_like(valid), 4, 8, 0.01).item() == 0.0
