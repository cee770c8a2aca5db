"""The on-disk clip format and the PoseTrack21 export."""

import json
from dataclasses import replace

import numpy as np
import pytest

from comotion.errors import InputError
from comotion.synth import (
    ClipGenerator,
    SceneConfig,
    SynthConfig,
    annotated_people,
    export_posetrack,
    load_clip,
    write_clip,
)
from comotion.synth.clip import tracker_style_boxes

SCENE = SceneConfig(height=64, width=96, num_frames=12, people=(3, 4), occluders=(1, 2), crossing_probability=1.0)


@pytest.fixture(scope="module")
def generated(tube_body):
    return ClipGenerator(tube_body, SynthConfig(scene=SCENE)).generate(11)


def test_png_round_trip_keeps_frames_ground_truth_and_metadata(generated, tmp_path):
    write_clip(tmp_path / "clip", generated.frames, generated.gt, generated.meta)
    clip = load_clip(tmp_path / "clip")
    assert clip.num_frames == 12 and clip.size == (64, 96) and clip.fps == 30.0
    assert clip.meta["seed"] == 11 and clip.meta["body_model"] == "tube-test-body" and clip.meta["frames"] == "png"
    np.testing.assert_allclose(clip.meta["K"], generated.gt.K[0])
    for name, array in generated.gt.to_arrays().items():
        loaded = getattr(clip.gt, name)
        assert loaded.dtype == array.dtype and loaded.shape == array.shape
        np.testing.assert_array_equal(loaded, array)
    for original, read in zip(generated.frames, clip.frames()):
        np.testing.assert_array_equal(read, original)
    np.testing.assert_array_equal(clip.frame(5), generated.frames[5])
    # Same content -> byte-identical files.
    write_clip(tmp_path / "again", generated.frames, generated.gt, generated.meta)
    assert (tmp_path / "clip" / "gt.npz").read_bytes() == (tmp_path / "again" / "gt.npz").read_bytes()


def test_mp4_clip_decodes_to_the_frames_up_to_compression(generated, tmp_path):
    write_clip(tmp_path / "clip", generated.frames, generated.gt, generated.meta, video=True)
    clip = load_clip(tmp_path / "clip")
    assert clip.meta["frames"] == "mp4" and not (tmp_path / "clip" / "frames").exists()
    frames = list(clip.frames())
    assert len(frames) == 12
    error = np.abs(np.stack(frames).astype(float) - np.stack(generated.frames)).mean()
    assert error < 8.0
    np.testing.assert_array_equal(clip.frame(3), frames[3])


def test_load_clip_reports_missing_or_foreign_files(tmp_path):
    with pytest.raises(InputError, match="meta.json missing"):
        load_clip(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format_version": 99}))
    np.savez(tmp_path / "gt.npz", present=np.zeros((1, 1), bool))
    with pytest.raises(InputError, match="format_version 99"):
        load_clip(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format_version": 1}))
    with pytest.raises(InputError, match="missing array"):
        load_clip(tmp_path)


def _read_gt_txt(path):
    """gt.txt as the PoseTrack21 MOT evaluation reads it (README: flag 1 kept, boxes truncated)."""
    rows = {}
    for line in path.read_text().splitlines():
        fields = line.split(",")
        assert len(fields) == 10
        if int(fields[6]) != 1:
            continue
        frame, pid = int(fields[0]), int(fields[1])
        x, y, w, h = (float(v) for v in fields[2:6])
        rows[(frame, pid)] = (x, y, w, h)
    return rows


def test_posetrack_export_round_trip(generated, tmp_path):
    write_clip(tmp_path / "clip", generated.frames, generated.gt, generated.meta)
    clip = load_clip(tmp_path / "clip")
    root = tmp_path / "dataset"
    export_posetrack(clip, root, "000001_synth", min_visible_fraction=0.2, min_visible_keypoints=3)
    gt = clip.gt

    info = json.loads((root / "posetrack_mot/mot/val/000001_synth/image_info.json").read_text())
    assert [entry["frame_index"] for entry in info] == list(range(1, 13))
    for position, entry in enumerate(info):
        assert entry["file_name"] == f"images/val/000001_synth/{position:06d}.jpg"
        assert (root / entry["file_name"]).is_file()
        assert len(entry["ignore_regions_x"]) == len(entry["ignore_regions_y"])

    rows = _read_gt_txt(root / "posetrack_mot/mot/val/000001_synth/gt/gt.txt")
    boxes = tracker_style_boxes(gt.box, SCENE.height, SCENE.width)
    annotated = gt.present.T & (gt.visible_fraction >= 0.2) & (gt.keypoints_visible.sum(-1) >= 3)
    assert len(rows) == annotated.sum() > 0
    for (frame, pid), (x, y, w, h) in rows.items():
        t, p = frame - 1, list(gt.ids).index(pid)
        assert annotated[t, p]
        np.testing.assert_allclose([x, y, x + w, y + h], boxes[t, p], atol=0.006)
    # Present but mostly hidden people are ignore regions (their boxes), not annotations.
    hidden = gt.present.T & ~annotated
    for t in range(gt.num_frames):
        assert len(info[t]["ignore_regions_x"]) == hidden[t].sum()
        for xs, ys, p in zip(info[t]["ignore_regions_x"], info[t]["ignore_regions_y"], np.nonzero(hidden[t])[0]):
            np.testing.assert_allclose([min(xs), min(ys), max(xs), max(ys)], boxes[t, p], atol=0.006)

    data = json.loads((root / "posetrack_data/val/000001_synth.json").read_text())
    assert len(data["images"]) == 12 and len(data["annotations"]) == len(rows)
    for annotation in data["annotations"]:
        x, y, w, h = rows[(annotation["image_id"] + 1, annotation["track_id"])]
        np.testing.assert_allclose(annotation["bbox"], [x, y, w, h], atol=0.006)
        t, p = annotation["image_id"], list(gt.ids).index(annotation["track_id"])
        keypoints = np.asarray(annotation["keypoints"]).reshape(17, 3)
        np.testing.assert_allclose(keypoints[:, :2], gt.coco_2d[t, p], atol=0.006)
        np.testing.assert_array_equal(keypoints[:, 2], gt.coco_visible[t, p])


def test_single_image_clips_cannot_be_exported_as_sequences(tube_body, tmp_path):
    config = SynthConfig(scene=replace(SCENE, num_frames=2), single_image=True)
    clip = ClipGenerator(tube_body, config).generate(0)
    write_clip(tmp_path / "clip", clip.frames, clip.gt, clip.meta)
    with pytest.raises(InputError, match="single-image"):
        export_posetrack(load_clip(tmp_path / "clip"), tmp_path / "out", "seq")


def test_exported_sequence_is_scored_by_the_tracking_evaluation(generated, tmp_path):
    from comotion.eval.tracking import evaluate_tracking
    from comotion.io.mot import format_mot_lines

    write_clip(tmp_path / "clip", generated.frames, generated.gt, generated.meta)
    export_posetrack(load_clip(tmp_path / "clip"), tmp_path / "dataset", "seq")
    gt = generated.gt
    annotated = annotated_people(gt)
    frames, slots = np.nonzero(annotated)
    boxes = tracker_style_boxes(gt.box, SCENE.height, SCENE.width)[frames, slots].reshape(-1, 2, 2)
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    # A tracker that outputs the ground truth (CoMotion's MOT writer, 0-based frames)...
    (predictions / "seq.txt").write_text("".join(format_mot_lines(frames, gt.ids[slots], boxes)))
    report = evaluate_tracking(tmp_path / "dataset", predictions)
    assert report.overall["mota"] == 1.0 and report.overall["idf1"] == 1.0
    assert report.overall["num_objects"] == len(frames)
    # ... and one that misses the first person entirely.
    missed = gt.ids[slots] == gt.ids[slots][0]
    (predictions / "seq.txt").write_text("".join(format_mot_lines(frames[~missed], gt.ids[slots][~missed], boxes[~missed])))
    report = evaluate_tracking(tmp_path / "dataset", predictions)
    assert report.overall["num_misses"] == missed.sum() and report.overall["num_false_positives"] == 0


def test_exported_boxes_follow_the_rule_the_tracker_boxes_people_with(generated, tube_body, tmp_path):
    """gt.txt boxes are the mesh box padded by 5 % of its longer side (spec 8.5, what ``comotion
    track`` writes), so the true bodies boxed by the writer's rule overlap them almost exactly.
    With the tight mesh box a perfect prediction reaches only IoU ~0.75 (anny people)."""
    import torch

    from comotion.eval.tracking import evaluate_tracking
    from comotion.io.mot import format_mot_lines, vertex_boxes

    write_clip(tmp_path / "clip", generated.frames, generated.gt, generated.meta)
    export_posetrack(load_clip(tmp_path / "clip"), tmp_path / "dataset", "seq")
    gt = generated.gt
    frames, slots = np.nonzero(annotated_people(gt))
    vertices = tube_body(
        torch.as_tensor(gt.betas[frames, slots]),
        torch.as_tensor(gt.pose[frames, slots]),
        torch.as_tensor(gt.trans[frames, slots]),
        vertices="all",
    ).vertices
    boxes = vertex_boxes(vertices, torch.as_tensor(gt.K[frames]), SCENE.height, SCENE.width, clamp="image")
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    (predictions / "seq.txt").write_text("".join(format_mot_lines(frames, gt.ids[slots], boxes.numpy())))
    report = evaluate_tracking(tmp_path / "dataset", predictions)
    assert report.overall["mota"] == 1.0 and report.overall["idf1"] == 1.0
    # Mean 1 - IoU; what is left comes from the writer's +1 px on width and height (quirk Q18)
    # and the evaluation's truncation of ground-truth boxes to whole pixels.
    # (0.21 with the tight boxes.)
    assert report.overall["motp"] < 0.12


def test_tracker_style_boxes_pad_by_the_longer_side_and_stay_in_the_image():
    boxes = np.array([[[10.0, 20.0, 30.0, 60.0], [90.0, 0.0, 100.0, 20.0], [np.nan] * 4]], np.float32)
    padded = tracker_style_boxes(boxes, height=64, width=96)
    np.testing.assert_allclose(padded[0, 0], [8.0, 18.0, 32.0, 62.0])  # 5 % of 40 px on each side
    np.testing.assert_allclose(padded[0, 1], [89.0, 0.0, 95.0, 21.0])  # clamped to [0, W-1] x [0, H-1]
    assert np.isnan(padded[0, 2]).all()
