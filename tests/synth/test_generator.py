"""Clip generation: determinism and ground truth that agrees with the rendered buffers."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from comotion.geometry.camera import project_points
from comotion.synth import ClipGenerator, SceneConfig, SynthConfig
from comotion.synth.generator import OCCLUDER_OWNER

SCENE = SceneConfig(height=96, width=128, num_frames=24, people=(4, 5), occluders=(1, 2), crossing_probability=0.7)


@pytest.fixture(scope="module")
def generator(tube_body):
    return ClipGenerator(tube_body, SynthConfig(scene=SCENE))


@pytest.fixture(scope="module")
def clips(generator):
    """A few clips with their depth/owner buffers."""
    return [generator.generate([7, k], keep_buffers=True) for k in range(4)]


def test_same_seed_gives_identical_frames_and_ground_truth(generator, clips):
    again = generator.generate([7, 0])
    for a, b in zip(clips[0].frames, again.frames):
        assert a.tobytes() == b.tobytes()
    for name, array in clips[0].gt.to_arrays().items():
        assert array.tobytes() == getattr(again.gt, name).tobytes(), name
    other = generator.generate([8, 0])
    assert clips[0].frames[0].tobytes() != other.frames[0].tobytes()
    assert clips[0].gt.pose.tobytes() != other.gt.pose.tobytes()


def test_stored_2d_keypoints_are_the_projection_of_the_stored_3d_keypoints(clips):
    for clip in clips:
        gt = clip.gt
        K = torch.as_tensor(gt.K, dtype=torch.float64)[:, None]
        for points, pixels in ((gt.keypoints_3d, gt.keypoints_2d), (gt.coco_3d, gt.coco_2d)):
            projected = project_points(torch.as_tensor(points, dtype=torch.float64), K).numpy()
            np.testing.assert_allclose(pixels, projected, atol=1e-4, rtol=0)


def test_keypoint_visibility_agrees_with_the_depth_and_owner_buffers(clips):
    occluded_by_other = 0
    visible_count = 0
    for clip in clips:
        gt = clip.gt
        height, width = clip.depth[0].shape
        for t in range(gt.num_frames):
            for p in range(gt.num_persons):
                for points, pixels, visible in (
                    (gt.keypoints_3d[t, p], gt.keypoints_2d[t, p], gt.keypoints_visible[t, p]),
                    (gt.coco_3d[t, p], gt.coco_2d[t, p], gt.coco_visible[t, p]),
                ):
                    u, v = pixels[:, 0], pixels[:, 1]
                    inside = (u > 0) & (u < width) & (v > 0) & (v < height) & (points[:, 2] > 0)
                    assert not np.any(visible & ~inside)
                    col = np.clip(np.floor(u).astype(int), 0, width - 1)
                    row = np.clip(np.floor(v).astype(int), 0, height - 1)
                    depth, owner = clip.depth[t][row, col], clip.owner[t][row, col]
                    own = owner == p
                    # Visible: the pixel shows the person itself or something behind the keypoint.
                    assert np.all(own[visible] | (depth[visible] > points[visible, 2]))
                    # Occluded (in the image): a nearer surface of someone or something else.
                    hidden = inside & ~visible
                    assert np.all(~own[hidden] & (depth[hidden] <= points[hidden, 2]))
                    occluded_by_other += int(hidden.sum())
                    visible_count += int(visible.sum())
    assert occluded_by_other > 20 and visible_count > 500  # the scenes really contain occlusions


def test_occluders_hide_people(clips):
    covered = sum(int((o == OCCLUDER_OWNER).sum()) for clip in clips for o in clip.owner)
    hidden_fraction = np.concatenate([(1 - c.gt.visible_fraction)[c.gt.present.T] for c in clips])
    assert covered > 0
    assert hidden_fraction.max() > 0.3


def test_people_enter_and_leave_the_image(clips):
    present = np.concatenate([clip.gt.present for clip in clips])
    changes = np.abs(np.diff(present.astype(int), axis=1)).sum()
    assert changes > 0
    assert present.any(axis=1).mean() > 0.5  # most people are seen at some point


def test_boxes_pixel_counts_and_truncation_match_the_buffers(clips):
    for clip in clips:
        gt = clip.gt
        height, width = clip.owner[0].shape
        for t in range(gt.num_frames):
            for p in range(gt.num_persons):
                mask = clip.owner[t] == p
                assert gt.visible_pixels[t, p] == mask.sum()
                if not mask.any():
                    assert np.isnan(gt.box_visible[t, p]).all()
                    continue
                rows, cols = np.nonzero(mask)
                np.testing.assert_array_equal(gt.box_visible[t, p], [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
                # Visible pixels lie inside the projected-mesh box (pixel centres inside it).
                x1, y1, x2, y2 = gt.box[t, p]
                assert x1 <= cols.min() + 0.5 and y1 <= rows.min() + 0.5
                assert x2 >= cols.max() + 0.5 and y2 >= rows.max() + 0.5
                assert 0 < gt.visible_fraction[t, p] <= 1
            # Present people whose box touches the border are truncated, others are not.
            present = gt.present[:, t]
            inner = present & (gt.box[t, :, 0] > 0) & (gt.box[t, :, 1] > 0) & (gt.box[t, :, 2] < width) & (gt.box[t, :, 3] < height)
            assert np.all(gt.truncation[t, inner] == 0)
            assert np.all(np.isnan(gt.box[t, ~present]))


def test_smpl_parameters_reproduce_the_keypoints_and_people_stand_on_the_ground(tube_body, clips):
    for clip in clips:
        gt = clip.gt
        with torch.no_grad():
            out = tube_body(torch.as_tensor(gt.betas), torch.as_tensor(gt.pose), torch.as_tensor(gt.trans), coco=True, vertices="all")
        np.testing.assert_allclose(out.keypoints.numpy(), gt.keypoints_3d, atol=1e-5)
        np.testing.assert_allclose(out.coco.numpy(), gt.coco_3d, atol=1e-5)
        # Back to the world (y up): the soles touch y = 0 unless the person is in a jump.
        world = np.einsum("tji,tpvj->tpvi", gt.camera_rotation, out.vertices.numpy() - gt.camera_translation[:, None, None])
        lowest = world[..., 1].min(axis=2)
        assert lowest.min() > -0.02
        assert np.median(lowest) < 0.02


def test_camera_looks_at_upright_people(clips):
    for clip in clips:
        # Heads are above pelvises in the image (camera y points down).
        kp = clip.gt.keypoints_2d
        assert np.mean(kp[..., 15, 1] < kp[..., 0, 1]) > 0.95


def test_single_image_mode_gives_independent_scenes(tube_body):
    config = SynthConfig(scene=replace(SCENE, num_frames=6, people=(1, 4)), single_image=True)
    clip = ClipGenerator(tube_body, config).generate(3, keep_buffers=True)
    assert clip.meta["independent_frames"] is True
    assert len(clip.frames) == 6 and clip.gt.num_frames == 6
    assert len(np.unique(clip.gt.K[:, 0, 0])) == 6  # a new camera per frame
    counts = clip.gt.present.sum(axis=0)
    assert counts.max() <= clip.gt.num_persons
    # Padding slots past a frame's people are never present.
    assert not clip.gt.present[counts.max():].any()
    K = torch.as_tensor(clip.gt.K, dtype=torch.float64)[:, None]
    projected = project_points(torch.as_tensor(clip.gt.keypoints_3d, dtype=torch.float64), K).numpy()
    real = clip.gt.keypoints_3d[..., 2].all(axis=-1)  # skip zero-filled padding slots
    np.testing.assert_allclose(clip.gt.keypoints_2d[real], projected[real], atol=1e-4)


def test_packaged_low_resolution_body_renders_people():
    from comotion.body import load_body_model

    body = load_body_model("anny-lowres")
    clip = ClipGenerator(body, SynthConfig(scene=replace(SCENE, num_frames=3))).generate(0, keep_buffers=True)
    assert clip.meta["body_model"] == "anny-lowres"
    assert any((o >= 0).sum() > 50 for o in clip.owner)
    assert clip.gt.keypoints_visible.any()


@pytest.mark.parametrize("flip", [False, True])
def test_backface_culling_changes_nothing_for_closed_meshes_of_either_winding(tube_body, flip):
    body = tube_body
    if flip:
        import copy

        body = copy.deepcopy(tube_body)
        body.faces = tube_body.faces[:, [0, 2, 1]]
    scene = replace(SCENE, num_frames=4)
    culled = ClipGenerator(body, SynthConfig(scene=scene)).generate(5, keep_buffers=True)
    full = ClipGenerator(body, SynthConfig(scene=scene, cull_backfaces=False)).generate(5, keep_buffers=True)
    for a, b in zip(culled.depth, full.depth):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(culled.owner, full.owner):
        np.testing.assert_array_equal(a, b)


def test_rendered_poses_respect_the_joint_limits(clips):
    from scipy.spatial.transform import Rotation

    from comotion.synth.motion import JOINT_EULER_ORDER, JOINT_LIMITS

    for clip in clips:
        pose = clip.gt.pose.reshape(-1, 24, 3)
        for joint in range(1, 24):  # the root holds the camera-frame orientation
            order = JOINT_EULER_ORDER[joint]
            angles = Rotation.from_rotvec(pose[:, joint].astype(np.float64)).as_euler(order)
            xyz = angles[:, [order.index(axis) for axis in "XYZ"]]
            assert np.all(xyz >= JOINT_LIMITS[joint, :, 0] - 1e-4) and np.all(xyz <= JOINT_LIMITS[joint, :, 1] + 1e-4)


def test_a_body_model_without_faces_is_refused(tube_body):
    import copy

    from comotion.errors import InputError

    body = copy.deepcopy(tube_body)
    body.faces = torch.zeros(0, 3, dtype=torch.long)
    with pytest.raises(InputError, match="no faces"):
        ClipGenerator(body, SynthConfig(scene=SCENE))
