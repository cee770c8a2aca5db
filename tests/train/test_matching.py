import torch

from comotion.train.matching import ground_truth_oks, match_candidates


def _person(x: float, y: float, size: float = 100.0) -> torch.Tensor:
    """27 keypoints spread over a ``size``-pixel square at (x, y) (limb lengths give the scale)."""
    grid = torch.linspace(0, 1, 27)
    return torch.stack([x + size * grid, y + size * grid.flip(0)], dim=-1)


def test_ground_truth_oks_uses_the_annotation_scale():
    target = _person(0, 0)[None] / 1024
    valid = torch.ones(1, 27, dtype=torch.bool)
    assert torch.allclose(ground_truth_oks(target, target, valid), torch.ones(1, 1))
    # A shrunken prediction (small scale) far away: at the annotation's scale the score only
    # depends on the distances, so a prediction 1 scale-unit x std off gives exactly 1/2.
    from comotion.geometry.similarity import skeleton_scale

    scale = skeleton_scale(target[0]).clamp(0.02, 1.0)
    shifted = target + torch.tensor([0.08 * scale, 0.0])
    assert torch.allclose(ground_truth_oks(shifted, target, valid), torch.full((1, 1), 0.5), atol=1e-5)
    # Only valid annotated points count (for the distances and the scale); none valid -> 0.
    partial = valid.clone()
    partial[0, 10:] = False
    partial_scale = skeleton_scale(target[0], partial[0]).clamp(0.02, 1.0)
    moved = target + torch.tensor([0.08 * partial_scale, 0.0])
    moved[0, 10:] += 5.0
    assert torch.allclose(ground_truth_oks(moved, target, partial), torch.full((1, 1), 0.5), atol=1e-5)
    assert ground_truth_oks(moved, target, torch.zeros_like(valid)).item() == 0


def test_hungarian_matching_one_to_one_by_oks():
    targets = torch.stack([_person(100, 100), _person(400, 300)])
    valid = torch.ones(2, 27, dtype=torch.bool)
    candidates = torch.stack([_person(402, 303), _person(900, 900), _person(98, 101), _person(101, 99)])
    logits = torch.zeros(4)
    match = match_candidates(candidates, logits, targets, valid, normalizer=1024.0, alpha=0.0)
    pairs = dict(zip(match.person.tolist(), match.candidate.tolist()))
    assert pairs[1] == 0
    assert pairs[0] in (2, 3)
    assert match.score.shape == (4, 2)


def test_confidence_breaks_near_ties():
    targets = _person(100, 100)[None]
    valid = torch.ones(1, 27, dtype=torch.bool)
    # Candidate 0 is slightly closer, candidate 1 much more confident.
    candidates = torch.stack([_person(100.5, 100), _person(101, 100)])
    logits = torch.tensor([-3.0, 3.0])
    assert match_candidates(candidates, logits, targets, valid, 1024.0, alpha=0.0).candidate.tolist() == [0]
    assert match_candidates(candidates, logits, targets, valid, 1024.0, alpha=0.5).candidate.tolist() == [1]


def test_no_people_no_matches():
    match = match_candidates(torch.zeros(5, 27, 2), torch.zeros(5), torch.zeros(0, 27, 2), torch.zeros(0, 27, dtype=torch.bool), 1024.0)
    assert match.candidate.numel() == 0 and match.person.numel() == 0
