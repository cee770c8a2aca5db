"""The tracker's state machine driven by hand-made people and update functions (no network)."""

from __future__ import annotations

import pytest
import torch

from comotion.tracking import TrackerConfig, TrackingEngine
from comotion.tracking.tracker import track_similarity

from .synthetic import (
    IMAGE_SIZE,
    RecordingUpdate,
    detections,
    person_keypoints,
    positions_of,
)


def make_engine(image_size=IMAGE_SIZE, **overrides) -> TrackingEngine:
    return TrackingEngine(TrackerConfig(**overrides), hidden_dim=4, image_size=image_size)


def similarity_at(shift: float) -> float:
    """Similarity of a stick figure and a copy shifted right by ``shift`` pixels."""
    a, b = person_keypoints(500.0, 300.0), person_keypoints(500.0 + shift, 300.0)
    return float(track_similarity(a[None], b[None], 1024.0, 0.08))


class Targets:
    """Update rule: tracks whose id has a target jump there, the others stay."""

    def __init__(self):
        self.by_id: dict[int, tuple[float, float]] = {}

    def __call__(self, tracks):
        positions = positions_of(tracks).clone()
        for row, track_id in enumerate(tracks.ids.tolist()):
            if track_id in self.by_id:
                positions[row] = torch.tensor(self.by_id[track_id])
        return positions


def test_new_tracks_need_confidence_and_self_consistency():
    shifts = torch.tensor([[0.0, 0.0], [0.0, 0.0], [8.0, 0.0], [13.0, 0.0]])
    update = RecordingUpdate(lambda tracks: positions_of(tracks) + shifts[: len(tracks)])
    engine = make_engine()
    # sigmoid(-2) = 0.12 < 0.2; an 8 px drift keeps similarity 0.82 > 0.75, 13 px gives 0.63.
    result = engine.step(detections([(200, 300), (500, 300), (800, 300), (1100, 300)], [3.0, -2.0, 3.0, 3.0]), update)
    assert update.calls == [[0, 0, 0, 0]]  # all candidates in one batch, before any is rejected
    assert result.tracks.ids.tolist() == [1, 2]
    assert result.created_ids == [1, 2] and result.ended_ids == []
    assert positions_of(result.tracks)[:, 0].tolist() == [200.0, 808.0]
    torch.testing.assert_close(result.tracks.match, torch.tensor([1.0, similarity_at(8.0)], dtype=torch.float64))
    assert result.tracks.hidden[:, 0].tolist() == [1.0, 1.0]  # fresh hidden state (0) went through one update
    assert result.tracks.age.tolist() == [1, 1]


def test_matching_is_not_exclusive_and_newcomers_are_updated_separately():
    update = RecordingUpdate()
    engine = make_engine()
    engine.step(detections([(300, 300), (330, 300)]), update)  # 30 px apart: similarity 0.24, no collapse
    result = engine.step(detections([(315, 300), (900, 300)]), update)
    # Both tracks claim the detection between them; the far one is a newcomer, in its own batch.
    assert update.calls == [[0, 0], [1, 2], [0]]
    assert result.tracks.ids.tolist() == [1, 2, 3]
    expected = similarity_at(15.0)
    assert expected > 0.2
    torch.testing.assert_close(result.tracks.match, torch.tensor([expected, expected, 1.0], dtype=torch.float64))


def test_no_detections_gives_zero_match():
    engine = make_engine()
    update = RecordingUpdate()
    for _ in range(4):
        engine.step(detections([(300, 300)]), update)
    result = engine.step(detections([]), update)
    assert result.tracks.ids.tolist() == [1]
    assert result.tracks.match.tolist() == [0.0]
    assert result.tracks.match_ema.tolist() == pytest.approx([0.8])


@pytest.mark.parametrize("hits, survives", [(2, False), (3, True)])
def test_young_track_ends_on_one_missed_frame(hits, survives):
    engine = make_engine()
    update = RecordingUpdate()
    for _ in range(hits):
        engine.step(detections([(300, 300)]), update)
    result = engine.step(detections([(900, 300)]), update)  # the tracked person is gone
    # Age hits + 1 <= 3 with raw match < 0.15 ends the track; the moving average alone (0.8) would not.
    assert (1 in result.tracks.ids.tolist()) is survives
    assert result.ended_ids == ([] if survives else [1])


def test_match_average_ends_a_lost_track_after_nine_misses():
    engine = make_engine()
    update = RecordingUpdate()
    for _ in range(5):
        engine.step(detections([(300, 300)]), update)
    alive = []
    for _ in range(10):
        result = engine.step(detections([]), update)
        alive.append(len(result.tracks) == 1)
    # Match 1 then 0 each frame: average 0.8^k, first below 0.15 at k = 9.
    assert alive == [True] * 8 + [False, False]


def test_track_leaving_the_image_ends_by_in_bounds_average():
    engine = make_engine()
    update = RecordingUpdate()
    for _ in range(4):
        engine.step(detections([(600, 300)]), update)
    scene = [(5000.0, 300.0)]
    update.rule = lambda tracks: torch.tensor(scene).expand(len(tracks), 2)
    alive = []
    for _ in range(10):
        result = engine.step(detections(scene), update)
        alive.append(result.tracks.ids.tolist() == [1])
        if alive[-1]:
            assert result.tracks.match.tolist() == [1.0]  # matched all along
    assert alive == [True] * 8 + [False, False]


def test_ids_are_consumed_by_tracks_ending_at_creation():
    engine = make_engine()
    update = RecordingUpdate()
    outside = engine.step(detections([(-900, 300)]), update)  # entirely left of the image
    assert len(outside.tracks) == 0 and outside.created_ids == [] and engine.last_id == 1
    inside = engine.step(detections([(600, 300)]), update)
    assert inside.tracks.ids.tolist() == [2] and inside.created_ids == [2]


@pytest.mark.parametrize("drift_first, kept", [(0.0, [1]), (3.0, [2])])
def test_collapse_rule1_new_pair_keeps_better_match(drift_first, kept):
    shifts = torch.tensor([[drift_first, 0.0], [0.0, 0.0]])
    update = RecordingUpdate(lambda tracks: positions_of(tracks) + shifts)
    engine = make_engine()
    result = engine.step(detections([(300, 300), (305, 300)]), update)
    # Tie (both self-consistency 1): the second goes; a drifting first one matches worse and goes.
    assert result.tracks.ids.tolist() == kept
    assert engine.last_id == 2
    assert engine.collapse_log == {}  # the pair's log goes with the ended id


@pytest.mark.parametrize("fix, kept", [(False, [2]), (True, [1])])
def test_collapse_rule3_old_track_against_brand_new_one(fix, kept):
    """Quirk Q6: an old track collapsing with one younger than 3 frames is the one that ends."""
    targets = Targets()
    update = RecordingUpdate(targets)
    engine = make_engine(fix_collapse_rule3=fix)
    for _ in range(5):
        engine.step(detections([(400, 300)]), update)
    created = engine.step(detections([(400, 300), (450, 300)]), update)  # 50 px: a newcomer
    assert created.created_ids == [2]
    targets.by_id[2] = (400.0, 300.0)  # the newcomer snaps onto the old track
    result = engine.step(detections([(400, 300)]), update)
    assert result.tracks.ids.tolist() == kept
    assert engine.collapse_log == {}


def run_long_collapse(fix_velocity: bool, separate_every: int | None = None) -> list:
    """Tracks 1 and 2 live apart for 5 frames, then 2 jumps 200 px onto 1 (1 sits 2 px off the
    only remaining detection).  Returns (step, ids, ended) per frame from step 6."""
    targets = Targets()
    update = RecordingUpdate(targets)
    engine = make_engine(fix_collapse_velocity=fix_velocity)
    for _ in range(5):
        engine.step(detections([(400, 300), (600, 300)]), update)
    history = []
    for step in range(6, 40):
        targets.by_id[1] = (402.0, 300.0)
        away = separate_every is not None and step % separate_every == 0
        targets.by_id[2] = (500.0, 300.0) if away else (400.0, 300.0)
        result = engine.step(detections([(400, 300)]), update)
        history.append((step, result.tracks.ids.tolist(), result.ended_ids))
        if len(result.tracks) < 2:
            break
    return history


@pytest.mark.parametrize("fix, ended", [(False, [1]), (True, [2])])
def test_collapse_rule4_resolved_after_more_than_20_of_30_frames(fix, ended):
    """Quirk Q7: the reference compares track 1's speed with itself, so the better match average
    (track 2, exactly on the detection) wins; with the fix, track 2's 2 m jump marks it."""
    history = run_long_collapse(fix)
    # Collapsed from step 6: the 21st collapsed step is step 26.
    assert [h[0] for h in history if len(h[1]) == 2] == list(range(6, 26))
    assert history[-1][0] == 26 and history[-1][2] == ended


def test_collapse_counts_frames_in_window_not_consecutive():
    """Quirk Q8: overlapping in 3 of every 4 frames still ends a track once the window holds 21."""
    history = run_long_collapse(False, separate_every=4)
    collapsed, expected_step = [], None
    for step in range(6, 40):
        if step % 4:
            collapsed.append(step)
        if len([s for s in collapsed if s > step - 30]) > 20:
            expected_step = step
            break
    assert history[-1][0] == expected_step
    assert len(history[-1][2]) == 1


def test_shot_cut_drops_tracks_and_ids_keep_increasing():
    engine = make_engine()
    update = RecordingUpdate()
    engine.step(detections([(300, 300), (800, 300)]), update)
    update.calls.clear()
    result = engine.step(detections([(300, 300), (600, 300)]), update, shot_cut=True)
    assert update.calls == [[0, 0]]  # old tracks are not updated; all detections start tracks
    assert result.shot_cut
    assert result.tracks.ids.tolist() == [3, 4]
    assert result.created_ids == [3, 4] and result.ended_ids == [1, 2]


def test_padded_output_keeps_oldest_and_pads_with_zeros():
    engine = make_engine(image_size=(2000, 2000))
    positions = [(100.0 + 150 * i, 300.0 + 400 * j) for j in range(5) for i in range(10)]
    result = engine.step(detections(positions), RecordingUpdate())
    assert result.tracks.ids.tolist() == list(range(1, 51))
    padded = result.padded()
    assert padded["id"].shape == (1, 48, 1) and padded["id"].dtype == torch.float32
    assert padded["id"][0, :, 0].tolist() == [float(i) for i in range(1, 49)]
    torch.testing.assert_close(padded["pred_2d"][0], result.tracks.keypoints_2d[:48])
    assert padded["hidden"].shape == (1, 48, 4) and padded["pred_3d"].shape == (1, 48, 27, 3)

    few = make_engine().step(detections([(300, 300), (900, 300)]), RecordingUpdate()).padded(max_tracks=5)
    assert few["id"][0, :, 0].tolist() == [1.0, 2.0, 0.0, 0.0, 0.0]
    assert few["pose"][0, 2:].abs().sum() == 0 and few["betas"][0, :2].abs().sum() > 0

    configured = make_engine(max_output_tracks=1).step(detections([(300, 300), (900, 300)]), RecordingUpdate())
    assert configured.padded()["id"][0, :, 0].tolist() == [1.0]

    empty = make_engine().step(detections([]), RecordingUpdate()).padded()
    assert all(value.abs().sum() == 0 for value in empty.values())
    assert empty["betas"].shape == (1, 48, 10)


def test_parse_tracker_settings_types_each_field():
    from comotion.tracking.config import parse_tracker_settings

    settings = parse_tracker_settings(["init_conf_thr=0.5", "young_age = 4", "shot_cut_reset=true", "fix_collapse_rule3=0"])
    assert settings == {"init_conf_thr": 0.5, "young_age": 4, "shot_cut_reset": True, "fix_collapse_rule3": False}
    assert isinstance(settings["young_age"], int)
    assert parse_tracker_settings([]) == {}


@pytest.mark.parametrize(
    "item, message",
    [
        ("init_conf_thr", "expected NAME=VALUE"),
        ("no_such=1", "unknown name 'no_such'"),
        ("young_age=2.5", "young_age takes a int"),
        ("shot_cut_reset=maybe", "shot_cut_reset takes a bool"),
        ("init_conf_thr=high", "init_conf_thr takes a float"),
    ],
)
def test_parse_tracker_settings_names_the_bad_item(item, message):
    from comotion.errors import InputError
    from comotion.tracking.config import parse_tracker_settings

    with pytest.raises(InputError, match=message):
        parse_tracker_settings([item])


@pytest.mark.parametrize("snap", [False, True])
def test_snap_to_detections_pairs_one_to_one_and_keeps_identity(snap):
    engine = make_engine(snap_to_detections=snap, snap_thr=0.5)
    update = RecordingUpdate()  # tracks stay where they were
    engine.step(detections([(300, 300), (320, 300), (900, 300)]), update)  # 20 px apart: no collapse
    # Both near tracks are closer than snap_thr allows to the detection at 305 (5 px and 15 px),
    # but it goes to one of them only; the far track is 10 px from its detection.
    result = engine.step(detections([(305, 300), (910, 300)]), update)
    assert result.tracks.ids.tolist() == [1, 2, 3]
    x = positions_of(result.tracks)[:, 0].tolist()
    assert x == ([305.0, 320.0, 910.0] if snap else [300.0, 320.0, 900.0])
    if snap:
        assert result.tracks.trans[0, 0].item() == pytest.approx(305 * 0.01)
        assert result.tracks.betas[0].tolist() == [1.0] * 10
    # Match scores are those of the tracks' own updated poses, snapped or not.
    torch.testing.assert_close(
        result.tracks.match, torch.tensor([similarity_at(5.0), similarity_at(15.0), similarity_at(10.0)], dtype=torch.float64),
        rtol=1e-6, atol=1e-6,
    )
    assert result.tracks.hidden[:, 0].tolist() == [2.0, 2.0, 2.0]


def test_snap_threshold_leaves_far_pairs_alone():
    engine = make_engine(snap_to_detections=True, snap_thr=0.9)
    update = RecordingUpdate()
    engine.step(detections([(300, 300)]), update)
    result = engine.step(detections([(310, 300)]), update)  # similarity 0.74 < 0.9
    assert positions_of(result.tracks)[:, 0].tolist() == [300.0]


@pytest.mark.parametrize("unpaired_match_thr", [0.0, 0.5])
def test_unpaired_detections_start_tracks_beside_a_tracked_person(unpaired_match_thr):
    engine = make_engine(unpaired_match_thr=unpaired_match_thr)
    update = RecordingUpdate()  # tracks stay where they were
    engine.step(detections([(300, 300)]), update)
    # The track pairs with its own detection at 302.  The one at 320 (similarity 0.42 to the
    # track, above missing_match_thr 0.2) is "explained" by the reference rule; as the pairing
    # leaves it out and 0.42 < 0.5, it is a person of its own under the pairing rule.  The one
    # at 304 is as close to the track as its own detection (0.95): a duplicate either way.
    result = engine.step(detections([(302, 300), (304, 300), (320, 300)], [3.0, 2.0, 3.0]), update)
    assert similarity_at(20.0) > 0.2
    started = unpaired_match_thr > engine.config.missing_match_thr
    assert result.tracks.ids.tolist() == ([1, 2] if started else [1])
    assert positions_of(result.tracks)[:, 0].tolist() == ([300.0, 320.0] if started else [300.0])


def test_unpaired_rule_and_snapping_share_one_pairing():
    engine = make_engine(unpaired_match_thr=0.5, snap_to_detections=True, snap_thr=0.5)
    update = RecordingUpdate()
    engine.step(detections([(300, 300)]), update)
    result = engine.step(detections([(320, 300), (303, 300)]), update)
    # The track takes the detection it is paired with (303), not the first one; 320 starts track 2.
    assert result.tracks.ids.tolist() == [1, 2]
    assert positions_of(result.tracks)[:, 0].tolist() == [303.0, 320.0]
