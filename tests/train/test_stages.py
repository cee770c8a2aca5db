"""Each stage: a few optimizer steps through the real loop lower the loss of a fixed batch."""

from __future__ import annotations

import pytest
import torch

from comotion.train.loop import (
    CHECKPOINT_NAME,
    MODEL_NAME,
    build_model,
    build_objective,
    train,
)
from comotion.train.sampling import MixtureSampler, StepBatches, build_datasets

from .conftest import make_config


def _fixed_batch_loss(config, checkpoint=None, term: str = "total") -> float:
    """Mean loss ``term`` over the batches the run trains on, for its initial weights or a checkpoint's."""
    torch.manual_seed(config.seed)
    model, heatmap_head, _ = build_model(config)
    if checkpoint is not None:
        state = torch.load(checkpoint, weights_only=True)
        model._network_state_module().load_state_dict(state["network"])
        heatmap_head.load_state_dict(state["heatmap_head"])
    objective = build_objective(config, model, heatmap_head).train()
    datasets = build_datasets(config, model.body)
    sampler = MixtureSampler([len(d) for d in datasets], [s.weight for s in config.data], config.batch_size, config.seed)
    batches = StepBatches(datasets, sampler, model.config.input_resolution, config.zoom)
    total = 0.0
    for step in range(config.steps):
        torch.manual_seed(0)
        with torch.no_grad():
            total += objective(*batches[step])[term].item()
    return total / config.steps


@pytest.fixture(scope="module")
def stage1_run(synth_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage1")
    config = make_config(out, [{"kind": "synthetic", "path": str(synth_images)}], stage=1, steps=3)
    train(config, progress=False)
    return config, out


def test_stage1_lowers_the_loss_and_writes_a_loadable_model(stage1_run):
    config, out = stage1_run
    before = _fixed_batch_loss(config)
    after = _fixed_batch_loss(config, out / CHECKPOINT_NAME)
    assert after < before
    log = (out / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,lr,reprojection,joints_3d,joint_angles,betas,depth,box,confidence,heatmap,total")
    assert len(log) == 4

    from comotion.model import CoMotion

    model = CoMotion.from_pretrained(out / MODEL_NAME)
    assert model.config.input_resolution == 256 and model.body.name == "anny-lowres"
    image = torch.zeros(3, 64, 64, dtype=torch.uint8)
    detections, _ = model.detect(model.prepare(image), conf_thr=0.0)
    assert detections.keypoints_2d.shape[1:] == (27, 2)


@pytest.mark.parametrize("stage,frames", [(2, 3), (3, 5)])
def test_update_stages_lower_the_loss(stage1_run, synth_video, tmp_path, stage, frames):
    _, stage1_out = stage1_run
    # One clip window without random crops: every step trains on the same batch.
    data = [{"kind": "synthetic", "path": str(synth_video)}]
    config = make_config(
        tmp_path, data, stage=stage, steps=3, frames=frames, zoom=(1.0, 1.0), optim={"lr": 1e-4, "warmup_steps": 1}
    )
    config.model.init = str(stage1_out / CHECKPOINT_NAME)
    before = _fixed_batch_loss(config)
    train(config, progress=False)
    after = _fixed_batch_loss(config, tmp_path / CHECKPOINT_NAME)
    assert after < before
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    initial = torch.load(stage1_out / CHECKPOINT_NAME, weights_only=True)["network"]
    # The detection module is frozen; the update module moved.
    det = [k for k in initial if k.startswith("detection_module.")]
    upd = [k for k in initial if k.startswith("update_module.") and initial[k].is_floating_point()]
    assert all(torch.equal(state["network"][k], initial[k]) for k in det)
    assert any(not torch.equal(state["network"][k], initial[k]) for k in upd)


def test_update_stage_can_train_the_feature_fusion(stage1_run, synth_video, tmp_path):
    from comotion.train.stages import normalize_images

    _, stage1_out = stage1_run
    data = [{"kind": "synthetic", "path": str(synth_video)}]
    config = make_config(
        tmp_path, data, stage=2, steps=2, frames=3, zoom=(1.0, 1.0), optim={"lr": 1e-4, "warmup_steps": 1},
        objective={"min_track_oks": 0.0, "train_feature_fusion": True},
    )  # fmt: skip
    config.model.init = str(stage1_out / CHECKPOINT_NAME)
    # The step-by-step detector pass equals the network's own forward.
    torch.manual_seed(0)
    model, heatmap_head, _ = build_model(config)
    objective = build_objective(config, model, heatmap_head).train()
    images, K = normalize_images(torch.rand(2, 3, 256, 256)), torch.tensor([[[300.0, 0, 128], [0, 300.0, 128]]] * 2)
    with torch.no_grad():
        expected = model.detection_module(images, K)
        got = objective._detect(images, K)
    for name in ("image_features", "betas", "delta_root_orient", "delta_body_pose", "trans", "conf"):
        assert torch.allclose(getattr(got, name), getattr(expected, name), atol=1e-6), name

    train(config, progress=False)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["network"]
    initial = torch.load(stage1_out / CHECKPOINT_NAME, weights_only=True)["network"]
    fusion = [k for k in initial if k.startswith("detection_module.fuse_features.") and ".dc2." not in k]
    rest = [k for k in initial if k.startswith("detection_module.") and k not in fusion]
    assert all(not torch.equal(state[k], initial[k]) for k in fusion)
    assert all(torch.equal(state[k], initial[k]) for k in rest)


def test_jitter_translation_moves_the_projected_root_by_the_drawn_noise():
    from comotion.geometry.camera import project_points
    from comotion.train.stages import jitter_translation

    K = torch.tensor([[300.0, 0.0, 128.0], [0.0, 310.0, 120.0]])
    trans = torch.tensor([[0.3, -0.2, 4.0], [-1.0, 0.5, 8.0]])
    assert torch.allclose(jitter_translation(trans, K, 0.0, 0.0, torch.Generator().manual_seed(0)), trans, atol=1e-6)

    noise = torch.randn(2, 3, generator=torch.Generator().manual_seed(5))
    moved = jitter_translation(trans, K, 6.0, 0.1, torch.Generator().manual_seed(5))
    shift = project_points(moved[:, None], K)[:, 0] - project_points(trans[:, None], K)[:, 0]
    assert torch.allclose(shift, 6.0 * noise[:, :2], atol=1e-3)
    assert torch.allclose(moved[:, 2] / trans[:, 2], torch.exp(0.1 * noise[:, 2]), atol=1e-6)


def test_attention_term_with_jittered_tracks_is_logged_and_trained(stage1_run, synth_video, tmp_path):
    _, stage1_out = stage1_run
    data = [{"kind": "synthetic", "path": str(synth_video)}]
    config = make_config(
        tmp_path, data, stage=2, steps=3, frames=3, zoom=(1.0, 1.0), optim={"lr": 1e-3, "warmup_steps": 1},
        objective={"min_track_oks": 0.0, "weights": {"attention": 1.0}, "track_jitter_px": 4.0, "track_jitter_depth": 0.1},
    )  # fmt: skip
    config.model.init = str(stage1_out / CHECKPOINT_NAME)
    before = _fixed_batch_loss(config, term="attention")
    assert before > 1.0  # a spread-out attention over the 32x32 cells is far from one person
    train(config, progress=False)
    assert _fixed_batch_loss(config, tmp_path / CHECKPOINT_NAME, term="attention") < before
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert header.startswith("step,lr,reprojection,joints_3d,joint_angles,depth,attention,total")


@pytest.mark.parametrize("term", ["depth", "box"])
def test_stage1_beyond_paper_terms_move_predictions_toward_the_truth(synth_images, tmp_path, term):
    """Two optimizer steps on the depth or box term alone, on one batch, lower it (the matched
    candidates stay the same over so few small steps; over more, matching swaps them)."""
    data = [{"kind": "synthetic", "path": str(synth_images)}]
    config = make_config(tmp_path, data, stage=1, objective={"weights": {term: 1.0}})
    torch.manual_seed(config.seed)
    model, heatmap_head, _ = build_model(config)
    objective = build_objective(config, model, heatmap_head).train()
    datasets = build_datasets(config, model.body)
    sampler = MixtureSampler([len(d) for d in datasets], [1.0], config.batch_size, config.seed)
    batch = StepBatches(datasets, sampler, model.config.input_resolution, config.zoom)[0]
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], lr=1e-4)
    values = []
    for _ in range(3):
        terms = objective(*batch)
        values.append(terms[term].item())
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
    assert values[0] > 0.05  # an untrained detector does not know where or how far people are
    assert values[2] < values[1] < values[0]
