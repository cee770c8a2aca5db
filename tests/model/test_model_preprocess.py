"""Image preparation against the reference (parity ``dataloading.pt``) and its inverse mapping."""

import pytest
import torch

from comotion.errors import InputError
from comotion.geometry.camera import default_intrinsics, project_points
from comotion.model.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    crop_intrinsics,
    crop_to_image_pixels,
    image_to_crop_pixels,
    prepare_image,
)

from .model_fixtures import read_png


@pytest.fixture(scope="module")
def dataloading(parity_dir):
    return torch.load(parity_dir / "dataloading.pt", weights_only=True)


def _case_image(parity_dir, case):
    return case["image"] if "image" in case else read_png(parity_dir / case["image_source"])


def test_normalisation_constants_match_reference(dataloading):
    assert torch.equal(torch.tensor(IMAGENET_MEAN), dataloading["normalization_mean"])
    assert torch.equal(torch.tensor(IMAGENET_STD), dataloading["normalization_std"])


def test_every_dataloading_case(parity_dir, parity_config, dataloading):
    assert dataloading["cases"], "dataloading.pt has no cases"
    for case in dataloading["cases"]:
        image = _case_image(parity_dir, case)
        assert list(image.shape) == case["input_shape"], case["name"]
        network, K_crop, K = prepare_image(image, case["K"], parity_config.input_resolution)
        assert torch.equal(K, case["K"])
        torch.testing.assert_close(K_crop, case["cropped_K"], rtol=1e-6, atol=0, msg=case["name"])
        if "cropped_image" in case:
            torch.testing.assert_close(network, case["cropped_image"], rtol=0, atol=1e-5, msg=case["name"])
        if "cropped_image_stride4" in case:
            strided = network[:, :, ::4, ::4]
            torch.testing.assert_close(strided, case["cropped_image_stride4"], rtol=0, atol=1e-5, msg=case["name"])
        if "cropped_image_stats" in case:
            full = network.double()
            stats = torch.stack([full.sum(), full.mean(), full.std(), full.abs().max()])
            expected = case["cropped_image_stats"]
            torch.testing.assert_close(stats[1:], expected[1:], rtol=1e-6, atol=1e-6, msg=case["name"])
            torch.testing.assert_close(stats[0], expected[0], rtol=1e-7, atol=1e-2, msg=case["name"])
        if case.get("cropped_image_is_normalized_png"):
            pixels = image.float() / 255.0
            expected = (pixels - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
            assert torch.equal(network[0], expected), f"{case['name']}: not bit-exact"


def test_default_intrinsics(dataloading):
    for entry in dataloading["default_K"]:
        height, width = entry["hw"]
        assert torch.equal(default_intrinsics(height, width), entry["K"]), entry["hw"]


def test_default_K_is_used_when_none_given():
    image = torch.zeros(3, 30, 50, dtype=torch.uint8)
    _, K_crop, K = prepare_image(image, None, 64)
    assert torch.equal(K, default_intrinsics(30, 50))
    # Default K always maps to f' = 2 * resolution and the centre of the crop.
    torch.testing.assert_close(K_crop[0], torch.tensor([[128.0, 0.0, 32.0], [0.0, 128.0, 32.0]]))


def test_padding_is_black_and_centred():
    image = torch.full((3, 2, 8), 255, dtype=torch.uint8)  # 3 rows of padding above, 3 below
    network, _, _ = prepare_image(image, None, 8)
    black = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
    white = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    for row in (0, 1, 2, 5, 6, 7):
        torch.testing.assert_close(network[0, :, row, 0], black)
    for row in (3, 4):
        torch.testing.assert_close(network[0, :, row, 0], white)


def test_odd_padding_goes_to_the_bottom():
    # 481 x 640: 79 rows above, 80 below (offsets truncated toward zero, quirk Q16).
    K = default_intrinsics(481, 640)
    K_crop = crop_intrinsics(K, 481, 640, 640)
    assert K_crop[1, 2].item() == pytest.approx(240.5 + 79)


def test_crop_pixel_mapping_round_trip_and_consistency_with_K():
    image_size, resolution = (300, 200), 512
    K = torch.tensor([[400.0, 0.0, 90.0], [0.0, 410.0, 160.0]])
    K_crop = crop_intrinsics(K, *image_size, resolution)
    points = torch.tensor([[0.3, -0.2, 4.0], [-1.0, 0.5, 7.0], [0.0, 0.0, 2.0]])
    in_image = project_points(points, K)
    in_crop = project_points(points, K_crop)
    torch.testing.assert_close(crop_to_image_pixels(in_crop, image_size, resolution), in_image)
    torch.testing.assert_close(image_to_crop_pixels(in_image, image_size, resolution), in_crop)


@pytest.mark.parametrize(
    "image, message",
    [
        (torch.zeros(4, 10, 10), "shape"),
        (torch.zeros(10, 10), "shape"),
        (torch.zeros(3, 10, 10, dtype=torch.int32), "dtype"),
        ("not an image", "tensor"),
    ],
)
def test_bad_images_give_one_line_errors(image, message):
    with pytest.raises(InputError, match=message) as info:
        prepare_image(image)
    assert "\n" not in str(info.value)


def test_bad_K_is_rejected():
    with pytest.raises(InputError, match="K"):
        prepare_image(torch.zeros(3, 10, 10), torch.eye(3))
