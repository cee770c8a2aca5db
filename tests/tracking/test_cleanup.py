"""Offline cleanup (spec 8.3-8.5) on hand-made tracks and detections."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from comotion.io.results import DetectionTable, FrameTable, TrackResults
from comotion.tracking.cleanup import (
    CleanupConfig,
    cleanup_ranges,
    cleanup_results,
    cleanup_tracks,
    format_mot_rows,
    merge_spans,
    select_rows,
)

from .synthetic import person_keypoints

IMAGE = (720, 1280)


def scene(tracks: dict[int, dict[int, float]], dets: list[list[float]], num_slots: int | None = None):
    """Padded inputs from ``tracks = {id: {frame: x}}`` (slots in id order) and per-frame detection xs."""
    num_frames = len(dets)
    num_slots = num_slots or len(tracks)
    ids = torch.zeros(num_frames, num_slots, dtype=torch.long)
    keypoints = torch.zeros(num_frames, num_slots, 27, 2)
    for slot, (track_id, xs) in enumerate(sorted(tracks.items())):
        for frame, x in xs.items():
            ids[frame, slot] = track_id
            keypoints[frame, slot] = person_keypoints(x, 300.0)
    det_keypoints = [
        torch.stack([person_keypoints(x, 300.0) for x in xs]) if xs else torch.zeros(0, 27, 2) for xs in dets
    ]
    det_logits = [torch.full((len(xs),), 2.0) for xs in dets]
    return ids, keypoints, det_keypoints, det_logits


def run(tracks, dets, config=None, num_slots=None):
    ids, keypoints, det_keypoints, det_logits = scene(tracks, dets, num_slots)
    return cleanup_tracks(ids, keypoints, det_keypoints, det_logits, IMAGE, config)


def test_greedy_assignment_trims_tracks_to_matched_frames():
    tracks = {1: {f: 300.0 for f in range(5)}, 2: {f: 1000.0 for f in range(5)}}
    dets = [[1000.0], [300.0, 1000.0], [300.0, 1000.0], [300.0, 1000.0], [1000.0]]
    result = run(tracks, dets, num_slots=3)  # a third, always empty slot (id 0)
    assert list(result.track_ref.items()) == [(2, (0, 5)), (1, (1, 4))]  # best total first
    assert result.frame_index.tolist() == [0, 1, 2, 3, 4, 1, 2, 3]
    assert result.slot.tolist() == [1, 1, 1, 1, 1, 0, 0, 0]


def test_low_confidence_detections_are_ignored():
    ids, keypoints, det_keypoints, det_logits = scene({1: {0: 300.0, 1: 300.0, 2: 300.0}}, [[300.0]] * 3)
    det_logits = [torch.tensor([-1.5])] * 3  # sigmoid 0.18 < 0.2
    assert cleanup_tracks(ids, keypoints, det_keypoints, det_logits, IMAGE).track_ref == {}


@pytest.mark.parametrize("truncate, order", [(True, [1, 2]), (False, [2, 1])])
def test_score_truncation_ties_go_to_the_lowest_id(truncate, order):
    # id 1: 1 + 1 + 0.21 (33 px off) = 2.2; id 2: three frames 3 px off, 3 x 0.97 = 2.9.
    tracks = {1: {0: 300.0, 1: 300.0, 2: 300.0}, 2: {0: 1000.0, 1: 1000.0, 2: 1000.0}}
    dets = [[300.0, 1003.0], [300.0, 1003.0], [333.0, 1003.0]]
    result = run(tracks, dets, CleanupConfig(truncate_scores=truncate))
    assert list(result.track_ref) == order


@pytest.mark.parametrize("stop, kept", [(True, {}), (False, {2: (0, 2)})])
def test_a_track_with_too_few_matches_stops_the_loop(stop, kept):
    # id 1 matches once (1 + 2 x 0.59 at 14 px = 2.2), id 2 twice (2.0): tie at 2, id 1 goes first.
    # A track needs more than min_matched_frames (1) matched frames.
    tracks = {1: {0: 300.0, 1: 300.0, 2: 300.0}, 2: {0: 1000.0, 1: 1000.0}}
    dets = [[300.0, 1000.0], [314.0, 1000.0], [314.0]]
    result = run(tracks, dets, CleanupConfig(stop_at_first_unmatched=stop))
    assert result.track_ref == kept


@pytest.mark.parametrize("whole_span, kept", [(True, {1: (0, 3)}), (False, {1: (0, 3), 2: (1, 2)})])
def test_detections_are_consumed_over_the_whole_span(whole_span, kept):
    # Frame 1's only detection is id 1's best (0.59, unmatched) but id 2's match (1.0).
    tracks = {1: {0: 300.0, 1: 300.0, 2: 300.0}, 2: {1: 314.0}}
    dets = [[300.0], [314.0], [300.0]]
    result = run(tracks, dets, CleanupConfig(min_matched_frames=0, consume_whole_span=whole_span))
    assert result.track_ref == kept


def test_ranges_single_and_multiple():
    assert cleanup_ranges(torch.ones(50, 3, dtype=torch.long), CleanupConfig()) == [(0, 50)]
    one_id_per_frame = torch.arange(1, 251)[:, None]
    assert cleanup_ranges(one_id_per_frame, CleanupConfig()) == [(0, 120), (100, 220), (200, 250)]
    # A range closing at the last frame is followed by a trailing range of its last 20 frames.
    ending = torch.arange(1, 221)[:, None]
    assert cleanup_ranges(ending, CleanupConfig()) == [(0, 120), (100, 220), (200, 220)]
    assert cleanup_ranges(ending, CleanupConfig(trailing_range=False)) == [(0, 120), (100, 220)]


def test_empty_slot_id_counts_toward_the_range_threshold():
    ids = torch.zeros(120, 2, dtype=torch.long)
    ids[:100, 0] = torch.arange(1, 101)  # 100 ids, plus 0 in the empty slots
    assert cleanup_ranges(ids, CleanupConfig()) == [(0, 120), (100, 120)]
    assert cleanup_ranges(ids, CleanupConfig(count_empty_id=False)) == [(0, 120)]


def test_merge_spans_and_row_order():
    merged = merge_spans([(0, {1: (0, 10), 2: (5, 8)}), (100, {3: (1, 2), 2: (0, 3)})])
    assert list(merged.items()) == [(1, (0, 10)), (2, (5, 103)), (3, (101, 102))]
    ids = torch.tensor([[1, 2], [2, 1], [2, 0]])
    frame, slot = select_rows(ids, {2: (0, 3), 1: (1, 2)})
    assert frame.tolist() == [0, 1, 2, 1] and slot.tolist() == [1, 0, 0, 1]


def test_no_detections_keeps_nothing():
    assert run({1: {0: 300.0}}, [[]]).track_ref == {}


def test_cleanup_results_on_a_results_table():
    # Frame rows in tracker order; id 2 appears before id 1 in frame 2 to check slot handling.
    frame_rows = [[(1, 300.0), (2, 1000.0)], [(1, 300.0), (2, 1000.0)], [(2, 1000.0), (1, 300.0)]]
    dets = [[1000.0], [300.0, 1000.0], [300.0, 1000.0]]
    frame_index = np.array([f for f, rows in enumerate(frame_rows) for _ in rows])
    track_id = np.array([i for rows in frame_rows for i, _ in rows])
    keypoints = np.stack([person_keypoints(x, 300.0).numpy() for rows in frame_rows for _, x in rows])
    results = TrackResults(
        header={},
        frame_index=frame_index,
        track_id=track_id,
        keypoints_2d=keypoints,
        betas=np.ones((len(track_id), 10), np.float32),
        frames=FrameTable(np.arange(3), np.zeros((3, 2, 3), np.float32), np.tile(np.array(IMAGE, np.int32), (3, 1))),
        detections=DetectionTable(
            np.array([f for f, xs in enumerate(dets) for _ in xs]),
            np.stack([person_keypoints(x, 300.0).numpy() for xs in dets for x in xs]),
            np.full(5, 2.0, np.float32),
        ),
    )
    cleaned = cleanup_results(results)
    assert cleaned.track_id.tolist() == [2, 2, 2, 1, 1]
    assert cleaned.frame_index.tolist() == [0, 1, 2, 1, 2]
    np.testing.assert_array_equal(cleaned.keypoints_2d[3], keypoints[2])
    assert cleanup_results(results.select(np.zeros(len(track_id), bool))).track_id.tolist() == []
    # Seeing only each frame's first track, ids 1 and 2 have one matched frame each: none is kept.
    assert cleanup_results(results, config=CleanupConfig(visible_slots=1)).track_id.tolist() == []


class SquareBody:
    """Stand-in body model: four vertices at fixed offsets from the translation."""

    offsets = torch.tensor([[-0.2, -0.4, 0.0], [0.0, 0.0, 0.0], [0.0, 0.4, 0.0], [0.2, 0.0, 0.0]])

    def __call__(self, betas, pose, trans, vertices=None):
        assert vertices == 20
        return SimpleNamespace(vertices=trans[:, None, :] + self.offsets)


def test_mot_rows_from_mesh_boxes():
    K = torch.tensor([[100.0, 0.0, 50.0], [0.0, 100.0, 50.0]])
    trans = torch.tensor([[-0.3, -0.1, 1.0], [0.6, 0.0, 1.0]])
    text = format_mot_rows(
        SquareBody(),
        torch.zeros(2, 10),
        torch.zeros(2, 72),
        trans,
        torch.tensor([0, 4]),
        torch.tensor([7, 9]),
        K,
        (100, 100),
    )
    # Row 1: vertices project to x 0..40, y 0..80; the longer side 80 pads 4 -> [-4, -4]-[44, 84],
    # min corner clamped to 0.01.  Row 2: x 90..130, y 10..90 -> [86, 6]-[134, 94], max x clamped
    # to W - 1 = 99.  Width and height get +1 like x and y (quirk Q18).
    assert text.splitlines() == [
        "1,7,1.01,1.01,44.99,84.99,1,0,0,0",
        "5,9,87.00,7.00,14.00,89.00,1,0,0,0",
    ]
    fixed = format_mot_rows(
        SquareBody(), torch.zeros(1, 10), torch.zeros(1, 72), trans[:1], [0], [7], K, (100, 100), fixed_quirks=True
    )
    assert fixed == "1,7,1.00,1.00,44.00,84.00,1,0,0,0\n"


def test_cleanup_for_a_tracker_shares_its_kernel_and_threshold():
    from comotion.tracking.config import TrackerConfig

    assert CleanupConfig.for_tracker(TrackerConfig()) == CleanupConfig()
    assert CleanupConfig.for_tracker(TrackerConfig(), fixed_quirks=True) == CleanupConfig.fixed()
    wide = CleanupConfig.for_tracker(TrackerConfig(similarity_std=0.2, init_conf_thr=0.5, similarity_normalizer=512.0))
    assert (wide.similarity_std, wide.detection_conf_thr, wide.similarity_normalizer) == (0.2, 0.5, 512.0)
    assert (wide.min_match_score, wide.min_matched_frames) == (CleanupConfig().min_match_score, CleanupConfig().min_matched_frames)


def test_cleanup_thresholds_stored_with_the_tracker_settings_reach_the_cleanup():
    from comotion.tracking.config import TrackerConfig

    tuned = CleanupConfig.for_tracker(TrackerConfig(cleanup_match_thr=0.5, cleanup_min_frames=3), fixed_quirks=True)
    assert (tuned.min_match_score, tuned.min_matched_frames) == (0.5, 3)
    assert not tuned.stop_at_first_unmatched  # the quirk fixes still apply
    # Track 1 matches its detection in 3 frames: kept with the reference's one-frame minimum,
    # dropped when more than 3 are needed.
    tracks, dets = {1: {f: 300.0 for f in range(3)}}, [[300.0]] * 3
    assert list(run(tracks, dets, CleanupConfig.for_tracker(TrackerConfig())).track_ref) == [1]
    assert run(tracks, dets, CleanupConfig.for_tracker(TrackerConfig(cleanup_min_frames=3))).track_ref == {}


@pytest.mark.parametrize("field, value", [("cleanup_min_frames", -1), ("cleanup_match_thr", 1.5)])
def test_cleanup_thresholds_out_of_range_are_config_errors(field, value):
    from comotion.errors import InputError
    from comotion.tracking.config import TrackerConfig

    with pytest.raises(InputError, match=field):
        TrackerConfig(**{field: value})


def test_track_command_cleanup_reads_the_tracker_settings_from_the_header():
    from comotion.commands.track import apply_cleanup
    from comotion.tracking.config import TrackerConfig

    # One track 30 px beside its detections in every frame: too far for the reference kernel
    # (similarity < 0.6), close enough for a kernel three times as wide.
    frames = 3
    keypoints = np.stack([person_keypoints(300.0, 300.0).numpy() for _ in range(frames)])
    detections = keypoints + np.array([30.0, 0.0], np.float32)
    def results(config):
        return TrackResults(
            header={} if config is None else {"config": dataclasses.asdict(config)},
            frame_index=np.arange(frames),
            track_id=np.ones(frames, np.int64),
            keypoints_2d=keypoints,
            betas=np.ones((frames, 10), np.float32),
            frames=FrameTable(np.arange(frames), np.zeros((frames, 2, 3), np.float32), np.tile(np.array(IMAGE, np.int32), (frames, 1))),
            detections=DetectionTable(np.arange(frames), detections, np.full(frames, 2.0, np.float32)),
        )
    assert len(apply_cleanup(results(None), fixed_quirks=False)) == 0
    assert len(apply_cleanup(results(TrackerConfig()), fixed_quirks=False)) == 0
    assert len(apply_cleanup(results(TrackerConfig(similarity_std=0.24)), fixed_quirks=False)) == frames
