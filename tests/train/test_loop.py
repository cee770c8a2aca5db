"""The loop: exact resume, stop signal, data-parallel equivalence, config errors, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from comotion.errors import InputError
from comotion.train import load_config
from comotion.train.loop import (
    CHECKPOINT_NAME,
    MODEL_NAME,
    SNAPSHOT_DIR,
    _StopFlag,
    train,
    warmup_cosine,
)

from .conftest import make_config

REPO = Path(__file__).resolve().parents[2]


def _network(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / CHECKPOINT_NAME, weights_only=True)["network"]


def _losses(out: Path) -> list[list[str]]:
    rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()[1:]]
    return [row[:10] for row in rows]  # step, lr, losses, total, grad norm (not speed or time)


def test_resume_equals_uninterrupted(synth_images, tmp_path):
    data = [{"kind": "synthetic", "path": str(synth_images)}]
    straight = make_config(tmp_path / "straight", data, steps=4)
    train(straight, progress=False)

    pieces = make_config(tmp_path / "pieces", data, steps=4)
    train(pieces, progress=False, until_step=2)
    assert torch.load(tmp_path / "pieces" / CHECKPOINT_NAME, weights_only=True)["step"] == 2
    assert not (tmp_path / "pieces" / MODEL_NAME).exists()  # not finished yet
    with pytest.raises(InputError, match="pass --resume"):
        train(pieces, progress=False)
    train(pieces, resume=True, progress=False)

    a, b = _network(tmp_path / "straight"), _network(tmp_path / "pieces")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "pieces")
    assert (tmp_path / "pieces" / MODEL_NAME).is_file()
    optimizer = torch.load(tmp_path / "pieces" / CHECKPOINT_NAME, weights_only=True)["optimizer"]
    assert optimizer["state"][0]["step"] == 4


def test_resume_needs_a_checkpoint(synth_images, tmp_path):
    config = make_config(tmp_path, [{"kind": "synthetic", "path": str(synth_images)}])
    with pytest.raises(InputError, match="no checkpoint"):
        train(config, resume=True, progress=False)


def test_stop_flag_catches_sigterm():
    flag = _StopFlag()
    flag.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.raised
    finally:
        flag.uninstall()
    assert signal.getsignal(signal.SIGTERM) is not flag._handle


def test_warmup_cosine_schedule():
    factor = warmup_cosine(warmup_steps=4, total_steps=14, min_ratio=0.1)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(9) == pytest.approx(0.55)  # half-way through the decay
    assert factor(14) == pytest.approx(0.1) and factor(100) == pytest.approx(0.1)


def _toml(config_path: Path, output_dir: Path, data: Path, steps: int) -> None:
    config_path.write_text(
        f"""
stage = 1
output_dir = "{output_dir}"
steps = {steps}
batch_size = 2
seed = 3
threads = 1
log_every = 1
[model]
preset = "tiny"
body_model = "anny-lowres"
[model.config.encoder]
dropout = 0.0
[optim]
lr = 1e-4
warmup_steps = 1
[[data]]
kind = "synthetic"
path = "{data}"
"""
    )


def test_shipped_configs_parse():
    paths = sorted((REPO / "configs").glob("tiny_stage*.toml"))
    assert len(paths) >= 3
    for path in paths:
        config = load_config(path)
        assert path.stem.startswith(f"tiny_stage{config.stage}")
        assert config.frames == 1 if config.stage == 1 else config.frames >= 8


def test_config_errors_name_the_problem(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('stage = 4\noutput_dir = "x"\nsteps = 1\nbatch_size = 1\n[[data]]\nkind = "synthetic"\npath = "d"\n')
    with pytest.raises(InputError, match="stage must be 1, 2 or 3"):
        load_config(path)
    path.write_text('stage = 1\noutput_dir = "x"\nsteps = 1\nbatch_size = 1\nbogus = 2\n[[data]]\nkind = "synthetic"\npath = "d"\n')
    with pytest.raises(InputError, match="unknown field.*bogus"):
        load_config(path)
    path.write_text('stage = 1\noutput_dir = "x"\nsteps = 1\nbatch_size = 1\n[[data]]\nkind = "video"\npath = "d"\n')
    with pytest.raises(InputError, match="kind 'video' unknown"):
        load_config(path)
    path.write_text('stage = 1\noutput_dir = "x"\nsteps = 1\nbatch_size = 1\n[objective.weights]\nfoo = 1.0\n[[data]]\nkind = "synthetic"\npath = "d"\n')
    with pytest.raises(InputError, match="unknown loss.*foo"):
        load_config(path)
    path.write_text('stage = 1\noutput_dir = "x"\nsteps = 1\nbatch_size = 1\nsnapshot_every = -1\n[[data]]\nkind = "synthetic"\npath = "d"\n')
    with pytest.raises(InputError, match="snapshot_every must be 0"):
        load_config(path)
    path.write_text("stage = [")
    with pytest.raises(InputError, match="invalid TOML"):
        load_config(path)


def test_cli_reports_bad_config(tmp_path):
    from comotion.cli import main

    assert main(["train", str(tmp_path / "missing.toml")]) == 2


def test_two_process_ddp_equals_one_process(synth_images, tmp_path):
    """torchrun with 2 CPU processes (gloo) on the same global batch gives the same weights.

    Adam divides by the root of the squared gradients, so parameters with gradients near its
    epsilon amplify float-summation differences to a fraction of the learning rate; a small
    learning rate keeps that under the tolerance."""
    _toml(tmp_path / "ddp.toml", tmp_path / "ddp", synth_images, steps=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "comotion.train", str(tmp_path / "ddp.toml"), "--no-progress", "--device", "cpu"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    _toml(tmp_path / "one.toml", tmp_path / "one", synth_images, steps=2)
    train(load_config(tmp_path / "one.toml"), progress=False, device="cpu")
    a, b = _network(tmp_path / "ddp"), _network(tmp_path / "one")
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-5
    ddp_rows, one_rows = _losses(tmp_path / "ddp"), _losses(tmp_path / "one")
    for ddp_row, one_row in zip(ddp_rows, one_rows):
        assert [float(v) for v in ddp_row[2:9]] == pytest.approx([float(v) for v in one_row[2:9]], rel=1e-4)


def test_fine_tuning_starts_from_official_checkpoints(parity_dir, official_data_dir, fake_smpl_path, synth_images, tmp_path):
    """``model.init`` = a folder with the official checkpoints (here the parity-small ones)."""
    from comotion.model.checkpoint import DETECTION_CHECKPOINT, REFINE_CHECKPOINT
    from comotion.train.loop import build_model

    official = tmp_path / "official"
    official.mkdir()
    (official / DETECTION_CHECKPOINT).symlink_to(parity_dir / "weights_detect.pt")
    (official / REFINE_CHECKPOINT).symlink_to(parity_dir / "weights_refine.pt")
    (official / "extra_smpl_reference.pt").symlink_to(official_data_dir / "extra_smpl_reference.pt")
    config = make_config(tmp_path / "run", [{"kind": "synthetic", "path": str(synth_images)}], steps=1)
    config.model.preset = "parity-small"
    config.model.init = str(official)
    config.model.body_model = str(fake_smpl_path)
    model, _, _ = build_model(config)
    reference = torch.load(parity_dir / "weights_detect.pt", weights_only=True)
    name = "detection_head.decoders.0.3.weight"
    assert torch.equal(model.detection_module.state_dict()[name], reference[name])
    train(config, progress=False)
    tuned = _network(tmp_path / "run")["detection_module." + name]
    assert tuned.shape == reference[name].shape and not torch.equal(tuned, reference[name])


def test_non_finite_loss_skips_the_update(synth_images, tmp_path, monkeypatch):
    from comotion.train import stages
    from comotion.train.loop import build_model

    monkeypatch.setattr(stages, "weighted_total", lambda terms, weights: sum(terms.values()) * float("nan"))
    config = make_config(tmp_path, [{"kind": "synthetic", "path": str(synth_images)}], steps=1)
    train(config, progress=False)
    header, row = (line.split(",") for line in (tmp_path / "log.csv").read_text().splitlines())
    assert row[header.index("skipped_steps")] == "1"
    torch.manual_seed(config.seed)
    initial = build_model(config)[0]._network_state_module().state_dict()
    assert all(torch.equal(initial[k], v) for k, v in _network(tmp_path).items())


def test_export_model_from_an_unfinished_run(synth_images, tmp_path):
    """A run stopped early still yields a model file that loads and equals the checkpoint."""
    from comotion.model import CoMotion
    from comotion.train.loop import export_model

    config = make_config(tmp_path / "run", [{"kind": "synthetic", "path": str(synth_images)}], steps=4)
    train(config, progress=False, until_step=1)
    path = export_model(tmp_path / "run" / CHECKPOINT_NAME, tmp_path / "model.safetensors")
    model = CoMotion.from_pretrained(path)
    network = _network(tmp_path / "run")
    state = model._network_state_module().state_dict()
    assert state.keys() == network.keys()
    assert all(torch.equal(state[k], network[k]) for k in state)
    with pytest.raises(InputError, match="not a training checkpoint"):
        export_model(path, tmp_path / "again.safetensors")
    half = CoMotion.from_pretrained(export_model(tmp_path / "run" / CHECKPOINT_NAME, tmp_path / "half.safetensors", half=True))
    state = half._network_state_module().state_dict()
    assert all(torch.equal(state[k], network[k].half().to(network[k].dtype)) for k in state)


def test_snapshots_keep_the_network_of_every_nth_step(synth_images, tmp_path):
    """Snapshots are the weights at their step: the last equals the final checkpoint, an earlier
    one equals a run stopped at that step."""
    from comotion.model import CoMotion

    data = [{"kind": "synthetic", "path": str(synth_images)}]
    train(make_config(tmp_path / "run", data, steps=4, snapshot_every=2), progress=False)
    snapshots = sorted(p.name for p in (tmp_path / "run" / SNAPSHOT_DIR).iterdir())
    assert snapshots == ["step000002.safetensors", "step000004.safetensors"]
    train(make_config(tmp_path / "stopped", data, steps=4), progress=False, until_step=2)

    def state(path):
        return CoMotion.from_pretrained(path)._network_state_module().state_dict()

    for snapshot, reference in (("step000004", _network(tmp_path / "run")), ("step000002", _network(tmp_path / "stopped"))):
        weights = state(tmp_path / "run" / SNAPSHOT_DIR / f"{snapshot}.safetensors")
        assert weights.keys() == reference.keys()
        assert all(torch.equal(weights[k], reference[k]) for k in weights)
    early, late = (state(tmp_path / "run" / SNAPSHOT_DIR / f"step00000{n}.safetensors") for n in (2, 4))
    assert any(not torch.equal(early[k], late[k]) for k in early)  # two different steps' weights


def test_sigterm_to_the_whole_process_group_still_checkpoints(synth_images, tmp_path):
    """Schedulers (Slurm, Kubernetes, a shell's kill -- -PGID) signal every process of a job,
    data-loading workers included.  The run must still write its checkpoint and exit cleanly
    instead of dying on the killed worker."""
    import time

    output_dir = tmp_path / "run"
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
stage = 1
output_dir = "{output_dir}"
steps = 1000
batch_size = 2
seed = 3
threads = 1
num_workers = 1
log_every = 1
checkpoint_every = 1000
checkpoint_minutes = 1000.0
[model]
preset = "tiny"
body_model = "anny-lowres"
[[data]]
kind = "synthetic"
path = "{synth_images}"
"""
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "comotion", "train", str(config), "--no-progress"],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = output_dir / "log.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:  # header + 2 steps
            break
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    state = torch.load(output_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    assert 2 <= state["step"] < 1000


def test_training_resolution_overrides_the_init_model(synth_images, tmp_path):
    """A model that runs at 384 px (the default model) trains at 256 px when the config says so."""
    from comotion.body import load_body_model
    from comotion.model import CoMotion, get_preset
    from comotion.train.loop import build_model

    model = CoMotion(get_preset("tiny"), load_body_model("anny-lowres"))
    model.set_input_resolution(384)
    init = model.save(tmp_path / "at384.safetensors")
    data = [{"kind": "synthetic", "path": str(synth_images)}]
    config = make_config(tmp_path / "run", data, model={"init": str(init), "body_model": "anny-lowres"})
    assert build_model(config)[0].config.input_resolution == 384
    config = make_config(
        tmp_path / "run", data, model={"init": str(init), "body_model": "anny-lowres", "input_resolution": 256}
    )
    trained = build_model(config)[0]
    assert trained.config.input_resolution == trained.detection_module.config.input_resolution == 256
