"""tools/average_models.py: the element-wise mean of model files of one architecture."""

import pytest
import torch

from comotion.body import load_body_model
from comotion.errors import InputError
from comotion.model import CoMotion, get_preset
from comotion.model.checkpoint import load_model_file

from .conftest import load_tool, run_tool


@pytest.fixture(scope="module")
def average():
    return load_tool("average_models")


def test_floats_are_averaged_and_integers_kept_from_the_first(average):
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(7)}
    mean = average.average_state_dicts([a, b], ["a", "b"])
    assert mean["w"].tolist() == [2.0, 4.0] and mean["n"].item() == 3


def test_different_networks_are_refused(average):
    a = {"w": torch.zeros(2)}
    with pytest.raises(InputError, match="b: not the same network as a"):
        average.average_state_dicts([a, {"v": torch.zeros(2)}], ["a", "b"])
    with pytest.raises(InputError, match=r"b: w has shape \(3,\), a \(2,\)"):
        average.average_state_dicts([a, {"w": torch.zeros(3)}], ["a", "b"])


def test_writes_the_mean_model_with_the_first_files_settings(average, tmp_path):
    body = load_body_model("anny-lowres")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = CoMotion(get_preset("tiny"), body)
        model.tracker_settings = {"init_conf_thr": 0.5 + 0.1 * seed}
        paths.append(model.save(tmp_path / f"m{seed}.safetensors"))
    out = tmp_path / "mean.safetensors"
    code, printed = run_tool(average, [str(p) for p in paths] + ["--out", str(out)])
    assert code == 0 and "mean of 2 models" in printed
    first, second, mean = (load_model_file(p) for p in (*paths, out))
    assert mean.tracker == {"init_conf_thr": 0.5} and mean.config == first.config
    floats = [key for key, value in mean.state_dict.items() if value.is_floating_point()]
    for key in floats:
        torch.testing.assert_close(mean.state_dict[key], (first.state_dict[key] + second.state_dict[key]) / 2)
    assert any(not torch.equal(mean.state_dict[key], first.state_dict[key]) for key in floats)


def test_one_file_or_another_architecture_is_one_line(average, tmp_path, capsys):
    body = load_body_model("anny-lowres")
    small = CoMotion(get_preset("tiny"), body).save(tmp_path / "a.safetensors")
    config = get_preset("tiny")
    config.input_resolution = 384
    other = CoMotion(config, body).save(tmp_path / "b.safetensors")
    assert average.main([str(small), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "at least two" in capsys.readouterr().err
    assert average.main([str(small), str(other), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "config differs" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
