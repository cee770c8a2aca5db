"""Loading and saving weights: strict official loading with one-line errors, our own file format."""

import shutil

import pytest
import torch

from comotion.body import load_body_model
from comotion.errors import ComotionError, InputError
from comotion.model import CoMotion, get_preset
from comotion.model.checkpoint import (
    DETECTION_CHECKPOINT,
    EXTRA_SMPL_REFERENCE,
    REFINE_CHECKPOINT,
    find_extra_smpl_reference,
    llama_head_dim,
)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return CoMotion(get_preset("tiny"), load_body_model("anny-lowres")).eval()


def _official_folder(tmp_path, parity_dir, official_data_dir, fake_smpl_path, detect_state=None, refine_state=None):
    """A folder laid out like the official repository's data/ folder, holding the parity weights."""
    folder = tmp_path / "data"
    (folder / "smpl").mkdir(parents=True)
    for name, source, state in (
        (DETECTION_CHECKPOINT, parity_dir / "weights_detect.pt", detect_state),
        (REFINE_CHECKPOINT, parity_dir / "weights_refine.pt", refine_state),
    ):
        if state is None:
            shutil.copy(source, folder / name)
        else:
            torch.save(state, folder / name)
    shutil.copy(official_data_dir / EXTRA_SMPL_REFERENCE, folder / "smpl" / EXTRA_SMPL_REFERENCE)
    shutil.copy(fake_smpl_path, folder / "smpl" / "SMPL_NEUTRAL.pkl")
    return folder


def _load_folder(folder, parity_config):
    return CoMotion.from_official(
        folder / DETECTION_CHECKPOINT, folder / REFINE_CHECKPOINT, folder / "smpl", config=parity_config
    )


def test_official_folder_layout_is_found(
    tmp_path, parity_dir, official_data_dir, fake_smpl_path, parity_config, parity_model
):
    folder = _official_folder(tmp_path, parity_dir, official_data_dir, fake_smpl_path)
    model = _load_folder(folder, parity_config)
    assert torch.equal(model.mean_pose, parity_model.mean_pose)
    for (key, ours), (_, ref) in zip(model.state_dict().items(), parity_model.state_dict().items()):
        assert torch.equal(ours, ref), key


def test_missing_key_is_named_in_one_line(tmp_path, parity_dir, official_data_dir, fake_smpl_path, parity_config):
    state = torch.load(parity_dir / "weights_detect.pt", weights_only=True)
    del state["fuse_features.dc2.weight"]
    folder = _official_folder(tmp_path, parity_dir, official_data_dir, fake_smpl_path, detect_state=state)
    with pytest.raises(ComotionError, match=r"missing keys: fuse_features\.dc2\.weight") as info:
        _load_folder(folder, parity_config)
    assert "\n" not in str(info.value) and DETECTION_CHECKPOINT in str(info.value)


def test_misshaped_and_unexpected_keys_are_named(
    tmp_path, parity_dir, official_data_dir, fake_smpl_path, parity_config
):
    state = torch.load(parity_dir / "weights_refine.pt", weights_only=True)
    state["encode_grid.weight"] = torch.zeros(3, 34)
    state["extra.weight"] = torch.zeros(1)
    folder = _official_folder(tmp_path, parity_dir, official_data_dir, fake_smpl_path, refine_state=state)
    with pytest.raises(ComotionError) as info:
        _load_folder(folder, parity_config)
    message = str(info.value)
    assert "\n" not in message
    assert "unexpected keys: extra.weight" in message
    assert "mis-shaped keys: encode_grid.weight (3, 34)" in message


def test_llama_head_dim_is_read_from_q_proj(parity_dir):
    state = torch.load(parity_dir / "weights_refine.pt", weights_only=True)
    head_dim = llama_head_dim(state, 16, "refine")
    rows = state["cross_attention.0.global_attention.0.self_attn.q_proj.weight"].shape[0]
    assert head_dim * 16 == rows
    state["cross_attention.0.global_attention.0.self_attn.q_proj.weight"] = torch.zeros(rows // 2, 1)
    with pytest.raises(ComotionError, match="disagree"):
        llama_head_dim(state, 16, "refine")


def test_missing_extra_smpl_reference_is_explained(tmp_path):
    with pytest.raises(InputError, match=EXTRA_SMPL_REFERENCE) as info:
        find_extra_smpl_reference(None, tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="not found"):
        find_extra_smpl_reference(tmp_path / "nowhere.pt", tmp_path)


def test_from_pretrained_accepts_the_official_folder(tmp_path, parity_dir, official_data_dir, fake_smpl_path):
    folder = _official_folder(tmp_path, parity_dir, official_data_dir, fake_smpl_path)
    # The folder's sizes are the official preset's only for full-size weights: expect a clear
    # mismatch error naming mis-shaped keys rather than a crash.
    with pytest.raises(ComotionError, match="mis-shaped keys"):
        CoMotion.from_pretrained(folder)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_own_format_round_trip(tiny_model, tmp_path, suffix):
    with torch.no_grad():
        tiny_model.mean_pose[3] = 0.25  # a non-default mean pose must survive the round trip
    path = tiny_model.save(tmp_path / f"model{suffix}")
    loaded = CoMotion.from_pretrained(path)
    assert loaded.config == tiny_model.config
    assert loaded.body.name == tiny_model.body.name
    ours, theirs = tiny_model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    image = torch.randint(0, 256, (3, 100, 140), dtype=torch.uint8)
    a, _ = tiny_model.detect(tiny_model.prepare(image), conf_thr=0.5)
    b, _ = loaded.detect(loaded.prepare(image), conf_thr=0.5)
    assert torch.equal(a.trans, b.trans) and torch.equal(a.candidate_index, b.candidate_index)


def test_own_format_needs_matching_config(tiny_model, tmp_path):
    path = tiny_model.save(tmp_path / "model.pt")
    data = torch.load(path, weights_only=True)
    data["config"]["detection"]["hidden_dim"] = 48
    torch.save(data, path)
    with pytest.raises(ComotionError, match="mis-shaped keys"):
        CoMotion.from_pretrained(path)


def test_foreign_files_are_rejected(tmp_path, parity_dir):
    with pytest.raises(InputError, match="not a comotion model file"):
        CoMotion.from_pretrained(parity_dir / "weights_detect.pt")
    with pytest.raises(InputError, match="not found"):
        CoMotion.from_pretrained(tmp_path / "missing.safetensors")
    for name in ("garbage.pt", "garbage.safetensors"):
        (tmp_path / name).write_bytes(b"not a checkpoint")
        with pytest.raises(InputError, match="cannot read"):
            CoMotion.from_pretrained(tmp_path / name)


def test_unpackaged_body_model_must_be_given(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_model.body, "name", "smpl:SMPL_NEUTRAL.pkl")
    path = tiny_model.save(tmp_path / "model.pt")
    with pytest.raises(InputError, match="trained with body model 'smpl:SMPL_NEUTRAL.pkl'"):
        CoMotion.from_pretrained(path)
    monkeypatch.undo()
    loaded = CoMotion.from_pretrained(path, body_model="anny-lowres")
    assert loaded.body.name == "anny-lowres"


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_tracker_settings_travel_with_the_weights(tiny_model, tmp_path, suffix, monkeypatch):
    monkeypatch.setattr(tiny_model, "tracker_settings", {"init_conf_thr": 0.55, "init_match_thr": 0.4})
    loaded = CoMotion.from_pretrained(tiny_model.save(tmp_path / f"model{suffix}"))
    assert loaded.tracker_settings == {"init_conf_thr": 0.55, "init_match_thr": 0.4}
    config = loaded.tracker_config()
    assert (config.init_conf_thr, config.init_match_thr, config.overlap_thr) == (0.55, 0.4, 0.6)
    assert loaded.tracker_config(fixed_quirks=True).shot_cut_reset
    assert loaded.tracker().config.init_conf_thr == 0.55
    assert loaded.tracker(init_conf_thr=0.3).config.init_conf_thr == 0.3


def test_weights_without_tracker_settings_use_the_reference_defaults(tiny_model, tmp_path):
    from comotion import TrackerConfig

    loaded = CoMotion.from_pretrained(tiny_model.save(tmp_path / "model.safetensors"))
    assert loaded.tracker_settings == {}
    assert loaded.tracker_config() == TrackerConfig()


@pytest.mark.parametrize("settings, message", [({"no_such": 1}, "unknown tracker setting"), ({"ema_coef": 1.5}, "ema_coef")])
def test_bad_stored_tracker_settings_are_named(tiny_model, tmp_path, monkeypatch, settings, message):
    monkeypatch.setattr(tiny_model, "tracker_settings", settings)
    path = tiny_model.save(tmp_path / "model.pt")
    with pytest.raises(InputError, match=message):
        CoMotion.from_pretrained(path)


def test_half_precision_file_is_half_the_size_and_loads_as_float32(tiny_model, tmp_path):
    full = tiny_model.save(tmp_path / "full.safetensors")
    half = tiny_model.save(tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded = CoMotion.from_pretrained(half)
    ours, theirs = tiny_model._network_state_module().state_dict(), loaded._network_state_module().state_dict()
    for key in ours:
        assert theirs[key].dtype == ours[key].dtype, key
        torch.testing.assert_close(theirs[key], ours[key].half().to(ours[key].dtype), rtol=0, atol=0)
