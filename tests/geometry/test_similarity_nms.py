import torch

from comotion.geometry import (
    boxes_from_points,
    clamp_boxes_reference,
    default_intrinsics,
    oks_nms,
    oks_similarity,
    project_points,
    skeleton_scale,
)
from comotion.geometry.camera import clamp_boxes_to_image


def _person(offset=(0.0, 0.0), size=1.0):
    torch.manual_seed(3)
    base = torch.rand(27, 2) * 0.3 * size + 0.2
    return base + torch.tensor(offset)


def test_identical_people_score_one_and_scores_are_symmetric():
    a = torch.stack([_person(), _person((0.05, 0.0)), _person((0.3, 0.1))])
    s = oks_similarity(a, a)
    torch.testing.assert_close(s.diagonal(), torch.ones(3))
    torch.testing.assert_close(s, s.T)
    assert s[0, 1] > s[0, 2]


def test_cauchy_kernel_value_for_a_known_shift():
    """Every point shifted by d: score = 1 / (1 + (d / (scale * std))^2)."""
    a = _person()[None]
    scale = skeleton_scale(a)[0].clamp(0.02, 1.0)
    d = 0.01
    b = a + torch.tensor([d, 0.0])
    expected = 1.0 / (1.0 + (d / scale / 0.08) ** 2)
    torch.testing.assert_close(oks_similarity(a, b)[0, 0], expected, atol=1e-6, rtol=0)


def test_zero_confidence_person_scores_zero():
    a = _person()[None]
    conf = torch.zeros(1, 27)
    assert oks_similarity(a, a, conf, conf)[0, 0] == 0


def test_reference_nms_over_suppresses_compared_to_greedy():
    """A beats B, B beats C, A does not beat C: the reference drops C too (quirk Q4)."""
    base = _person()
    people = torch.stack([base, base + torch.tensor([0.02, 0.0]), base + torch.tensor([0.04, 0.0])])
    logits = torch.tensor([3.0, 2.0, 1.0])
    sim = oks_similarity(people, people)
    thr = float((sim[0, 1] + sim[0, 2]) / 2)
    assert sim[1, 2] > thr and sim[0, 2] < thr
    assert oks_nms(people, logits, iou_thr=thr, conf_thr=0.1).tolist() == [0]
    assert oks_nms(people, logits, iou_thr=thr, conf_thr=0.1, transitive=True).tolist() == [0, 2]


def test_nms_confidence_threshold_and_empty():
    people = torch.stack([_person(), _person((0.5, 0.5))])
    assert oks_nms(people, torch.tensor([-5.0, 0.0]), conf_thr=0.4).tolist() == [1]
    assert oks_nms(people, torch.tensor([-5.0, -5.0])).numel() == 0


def test_projection_clamps_depth_and_default_intrinsics():
    K = default_intrinsics(480, 640)
    assert K.tolist() == [[1280.0, 0.0, 320.0], [0.0, 1280.0, 240.0]]
    uv = project_points(torch.tensor([[0.0, 0.0, 2.0], [1.0, -1.0, -1.0]]), K)
    torch.testing.assert_close(uv[0], torch.tensor([320.0, 240.0]))
    assert uv[1, 0] > 1e5 and uv[1, 1] < -1e5  # behind the camera: clamped depth keeps the signs


def test_box_clamping_variants():
    boxes = torch.tensor([[[-5.0, 10.0], [700.0, 50.0]], [[650.0, 10.0], [700.0, 50.0]]])
    ref = clamp_boxes_reference(boxes, 480, 640)
    torch.testing.assert_close(ref[0], torch.tensor([[0.01, 10.0], [639.0, 50.0]]))
    assert ref[1, 0, 0] > ref[1, 1, 0]  # the reference leaves an inverted box off the right edge
    fixed = clamp_boxes_to_image(boxes, 480, 640)
    assert fixed[1].tolist() == [[639.0, 10.0], [639.0, 50.0]]
    assert boxes_from_points(torch.tensor([[[0.0, 0.0], [10.0, 4.0]]]), pad=0.1).tolist() == [[[-1.0, -1.0], [11.0, 5.0]]]
