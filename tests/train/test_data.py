import json

import numpy as np
import pytest
import torch

from comotion.errors import InputError
from comotion.geometry.camera import project_points
from comotion.train.data import (
    KeypointImages,
    PanZoomClips,
    SmplSequences,
    SyntheticClips,
    collate,
    crop_sample,
    letterbox_box,
    prepare_sample,
)
from comotion.train.sampling import MixtureSampler, StepBatches


def test_synthetic_items_and_targets(synth_images, synth_video):
    images = SyntheticClips(synth_images)
    assert len(images) == 4 and images.num_frames == 1  # 2 clips x 2 independent frames
    sample = images.load(0)
    assert sample.images.shape == (1, 3, 64, 64)
    assert sample.valid.any()
    # Stored 2-D keypoints are the projections of the stored 3-D ones.
    projected = project_points(sample.keypoints_3d, sample.K[:, None])
    valid = sample.valid
    assert torch.allclose(projected[valid], sample.keypoints_2d[valid], atol=1e-2)

    video = SyntheticClips(synth_video, num_frames=4, window_stride=2)
    assert len(video) == 2  # windows start at 0 and 2 of 6 frames
    clip = video.load(1)
    assert clip.images.shape == (4, 3, 64, 64) and clip.valid.shape[0] == 4
    with pytest.raises(InputError, match="video frames 1 apart"):
        SyntheticClips(synth_images, num_frames=4)


def test_frame_step_takes_every_nth_frame(synth_video):
    every = SyntheticClips(synth_video, num_frames=6).load(0)
    strided = SyntheticClips(synth_video, num_frames=3, window_stride=1, frame_step=2)
    assert len(strided) == 2  # windows 0,2,4 and 1,3,5 of 6 frames
    for index, frames in ((0, [0, 2, 4]), (1, [1, 3, 5])):
        sample = strided.load(index)
        assert torch.equal(sample.images, every.images[frames])
        assert torch.equal(sample.keypoints_2d, every.keypoints_2d[frames])
        assert torch.equal(sample.K, every.K[frames])
    with pytest.raises(InputError, match="3 video frames 3 apart"):
        SyntheticClips(synth_video, num_frames=3, frame_step=3)
    with pytest.raises(InputError, match="frame_step must be at least 1"):
        SyntheticClips(synth_video, num_frames=2, frame_step=0)


def test_crop_moves_keypoints_and_intrinsics_consistently(synth_video):
    sample = SyntheticClips(synth_video, num_frames=2).load(0)
    boxes = torch.tensor([[10.0, -6.0, 40.0], [0.0, 0.0, 64.0]])
    cropped = crop_sample(sample, boxes, resolution=32)
    assert cropped.images.shape == (2, 3, 32, 32)
    # 3-D targets are unchanged and still project onto the moved 2-D keypoints with the new K.
    assert torch.equal(cropped.keypoints_3d, sample.keypoints_3d)
    projected = project_points(cropped.keypoints_3d, cropped.K[:, None])
    v = cropped.valid
    assert torch.allclose(projected[v], cropped.keypoints_2d[v], atol=1e-2)
    # Pixel content moves with the box: output pixel (j, i) of frame 0 samples input
    # (10 + (j + 0.5) * 40 / 32 - 0.5, -6 + ...); check a pixel away from the border.
    j, i = 12, 20
    x, y = 10 + (j + 0.5) * 40 / 32 - 0.5, -6 + (i + 0.5) * 40 / 32 - 0.5
    x0, y0, fx, fy = int(np.floor(x)), int(np.floor(y)), x - np.floor(x), y - np.floor(y)
    img = sample.images[0]
    expected = (
        img[:, y0, x0] * (1 - fx) * (1 - fy) + img[:, y0, x0 + 1] * fx * (1 - fy)
        + img[:, y0 + 1, x0] * (1 - fx) * fy + img[:, y0 + 1, x0 + 1] * fx * fy
    )  # fmt: skip
    assert torch.allclose(cropped.images[0, :, i, j], expected, atol=1e-5)
    # An identity box leaves the image untouched.
    same = crop_sample(sample, torch.tensor([[0.0, 0.0, 64.0]] * 2), resolution=64)
    assert torch.allclose(same.images, sample.images, atol=1e-6)


def test_letterbox_pads_the_short_side():
    assert letterbox_box(48, 64).tolist() == [0.0, -8.0, 64.0]


def test_collate_pads_person_slots(synth_images):
    dataset = SyntheticClips(synth_images)
    samples = [prepare_sample(dataset, i, 64, (1.0, 1.0), seed=i, augment=False) for i in range(len(dataset))]
    batch = collate(samples)
    most = max(s.valid.shape[1] for s in samples)
    assert batch.valid.shape == (len(samples), 1, most)
    assert batch.keypoints_2d.shape == (len(samples), 1, most, 27, 2)
    for b, s in enumerate(samples):
        assert not batch.valid[b, :, s.valid.shape[1] :].any()


def test_pan_zoom_clip_has_consistent_moving_crops(synth_images):
    clips = PanZoomClips(SyntheticClips(synth_images), num_frames=5)
    sample = prepare_sample(clips, 0, 48, (0.5, 0.9), seed=11)
    assert sample.images.shape == (5, 3, 48, 48)
    assert not torch.allclose(sample.K[0], sample.K[-1])  # the virtual camera moved
    projected = project_points(sample.keypoints_3d, sample.K[:, None])
    assert torch.allclose(projected[sample.valid], sample.keypoints_2d[sample.valid], atol=1e-2)
    again = prepare_sample(clips, 0, 48, (0.5, 0.9), seed=11)
    assert torch.equal(again.images, sample.images)


def test_smpl_sequences_compute_keypoints(tmp_path):
    from PIL import Image

    from comotion.body import load_body_model

    body = load_body_model("anny-lowres")
    for t in range(3):
        Image.fromarray(np.full((40, 60, 3), 60 * t, dtype=np.uint8)).save(tmp_path / f"{t}.png")
    rng = np.random.default_rng(0)
    pose = (rng.normal(size=(3, 2, 72)) * 0.1).astype(np.float32)
    trans = np.array([[[0.0, 0.0, 5.0], [1.0, 0.0, 6.0]]] * 3, dtype=np.float32)
    K = np.array([[100.0, 0, 30], [0, 100.0, 20], [0, 0, 1]], dtype=np.float32)
    np.savez(tmp_path / "seq.npz", image_paths=np.array([f"{t}.png" for t in range(3)]), K=K,
             betas=np.zeros((3, 2, 10), np.float32), pose=pose, trans=trans, valid=np.array([[True, False]] * 3))  # fmt: skip
    dataset = SmplSequences(tmp_path, body, num_frames=2, window_stride=1)
    assert len(dataset) == 2
    sample = dataset.load(1)
    assert sample.images.shape == (2, 3, 40, 60)
    assert torch.allclose(sample.images[0], torch.full((3, 40, 60), 60 / 255))
    expected = body.keypoints(torch.zeros(2, 10), torch.from_numpy(pose[1:3, 0]), torch.from_numpy(trans[1:3, 0]))
    assert torch.allclose(sample.keypoints_3d[:, 0], expected, atol=1e-6)
    assert sample.valid[:, 0].all() and not sample.valid[:, 1].any()
    assert sample.has_betas[:, 0].all()


def _coco_file(tmp_path, with_tracks: bool = False):
    from PIL import Image

    images, annotations = [], []
    for t in range(3):
        Image.fromarray(np.zeros((50, 80, 3), dtype=np.uint8)).save(tmp_path / f"f{t}.jpg")
        images.append({"id": 10 + t, "file_name": f"f{t}.jpg", "height": 50, "width": 80, "vid_id": "v", "frame_id": t})
        keypoints = []
        for k in range(17):
            keypoints += [5.0 + k + t, 7.0 + k, 2 if k != 3 else 0]
        annotations.append({"id": 100 + t, "image_id": 10 + t, "keypoints": keypoints, "track_id": 4, "iscrowd": 0})
    annotations.append({"id": 200, "image_id": 10, "keypoints": [1.0, 1.0, 2] * 2 + [0, 0, 0] * 15, "iscrowd": 0})  # too few points
    data = {"images": images, "annotations": annotations, "categories": []}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_keypoints_map_into_the_27_point_layout(tmp_path):
    from comotion.io.posetrack import COCO_FROM_KEYPOINTS27

    dataset = KeypointImages(_coco_file(tmp_path), tmp_path)
    assert len(dataset) == 3
    sample = dataset.load(0)
    assert sample.valid.shape == (1, 1)  # the 2-point annotation is skipped
    slots = list(COCO_FROM_KEYPOINTS27)
    assert torch.allclose(sample.keypoints_2d[0, 0, slots[0]], torch.tensor([5.0, 7.0]))
    assert torch.allclose(sample.keypoints_2d[0, 0, slots[16]], torch.tensor([21.0, 23.0]))
    assert sample.keypoints_2d_valid[0, 0].sum() == 16  # 17 COCO points, one unlabelled
    assert not sample.has_3d.any() and not sample.has_betas.any()
    assert sample.K[0, 0, 0] == 160.0  # default intrinsics f = 2 max(H, W)


def test_posetrack_clips_follow_track_ids_and_pseudo_labels(tmp_path):
    from comotion.body import load_body_model

    body = load_body_model("anny-lowres")
    np.savez(tmp_path / "labels.npz", annotation_id=np.array([101]), betas=np.ones((1, 10), np.float32),
             pose=np.zeros((1, 72), np.float32), trans=np.array([[0, 0, 4.0]], np.float32))  # fmt: skip
    dataset = KeypointImages(_coco_file(tmp_path), tmp_path, num_frames=2, pseudo_labels=tmp_path / "labels.npz", body=body)
    sample = dataset.load(0)
    assert sample.valid.shape == (2, 1) and sample.valid.all()
    assert torch.allclose(sample.keypoints_2d[1, 0, 22], torch.tensor([6.0, 7.0]))  # nose of frame 1
    assert sample.has_3d.tolist() == [[False], [True]]
    assert not sample.has_betas.any()  # pseudo-labels never supervise betas
    assert torch.allclose(sample.keypoints_3d[1, 0], body.keypoints(torch.ones(10), torch.zeros(72), torch.tensor([0, 0, 4.0])), atol=1e-6)


def test_keypoint_json_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="needs 'images' and 'annotations'"):
        KeypointImages(bad, tmp_path)
    with pytest.raises(InputError, match="cannot read keypoint JSON"):
        KeypointImages(tmp_path / "missing.json", tmp_path)


def test_mixture_sampler_is_a_pure_function_of_seed_and_step():
    sampler = MixtureSampler([5, 100], [1.0, 3.0], batch_size=8, seed=1)
    first = sampler.global_batch(7)
    assert first == MixtureSampler([5, 100], [1.0, 3.0], batch_size=8, seed=1).global_batch(7)
    assert first != sampler.global_batch(8)
    # Two processes split the same global batch.
    assert sampler.local_batch(7, 0, 2) + sampler.local_batch(7, 1, 2) == first
    drawn = [d.dataset for step in range(200) for d in sampler.global_batch(step)]
    assert abs(np.mean(drawn) - 0.75) < 0.05  # weights 1:3
    with pytest.raises(InputError, match="not divisible"):
        sampler.local_batch(0, 0, 3)


def test_step_batches(synth_images):
    dataset = SyntheticClips(synth_images)
    sampler = MixtureSampler([len(dataset)], [1.0], batch_size=2, seed=0)
    batches = StepBatches([dataset], sampler, resolution=32, zoom=(0.8, 1.0))
    batch, seeds = batches[3]
    assert batch.images.shape == (2, 1, 3, 32, 32) and seeds.shape == (2,)
    again, _ = batches[3]
    assert torch.equal(batch.images, again.images)
