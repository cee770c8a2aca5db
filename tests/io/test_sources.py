"""Frame sources: every input kind, the frame selection options, intrinsics and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from comotion.errors import InputError
from comotion.io.sources import (
    ImageFolderSource,
    ImageSource,
    Intrinsics,
    StreamSource,
    VideoSource,
    open_source,
)
from tests.io import io_fixtures
from tests.io.io_fixtures import numbered_frames, write_video


def brightness(image: torch.Tensor) -> float:
    """Mean of the frame away from the white corner marker."""
    return float(image[:, 6:, 6:].float().mean())


def frame_number(image: torch.Tensor) -> int:
    return round((brightness(image) - 20) / 10)


@pytest.mark.parametrize(
    "name, codec, pix_fmt",
    [
        ("clip.mp4", "libx264", "yuv444p"),
        ("clip.MOV", "libx264", "yuv444p"),
        ("clip.mkv", "ffv1", "yuv420p"),
        ("clip.avi", "mjpeg", "yuvj444p"),
        ("clip.webm", "libvpx-vp9", "yuv444p"),
    ],
)
def test_video_containers_decode_every_frame_in_order(tmp_path, name, codec, pix_fmt):
    path = write_video(tmp_path / name, numbered_frames(6, 24, 32), codec=codec, pix_fmt=pix_fmt)
    source = open_source(path)
    assert isinstance(source, VideoSource)
    assert (source.info.height, source.info.width, source.info.kind) == (24, 32, "video")
    assert source.info.fps == pytest.approx(10.0)
    frames = list(source)
    assert [f.index for f in frames] == list(range(6))
    assert [frame_number(f.image) for f in frames] == list(range(6))
    assert frames[0].image.dtype == torch.uint8 and frames[0].image.shape == (3, 24, 32)
    assert frames[0].K.dtype == torch.float32
    torch.testing.assert_close(frames[0].K, torch.tensor([[64.0, 0, 16], [0, 64, 12]]))
    if source.info.num_frames is not None:
        assert source.info.num_frames == 6


def test_video_start_stride_max_frames_select_source_frames(tmp_path):
    path = write_video(tmp_path / "clip.mp4", numbered_frames(12, 16, 16))
    source = open_source(path, start=2, stride=3, max_frames=3)
    numbers = [frame_number(f.image) for f in source]
    assert numbers == [2, 5, 8]
    assert source.info.num_frames == 3
    assert source.info.fps == pytest.approx(10.0 / 3)
    # Without max_frames the stride runs to the end: 2, 5, 8, 11.
    assert [frame_number(f.image) for f in open_source(path, start=2, stride=3)] == [2, 5, 8, 11]
    assert len(open_source(path, start=2, stride=3)) == 4


def test_video_odd_size_is_kept(tmp_path):
    path = write_video(tmp_path / "odd.mp4", numbered_frames(3, 21, 33))
    frames = list(open_source(path))
    assert frames[0].image.shape == (3, 21, 33)
    torch.testing.assert_close(frames[0].K, torch.tensor([[66.0, 0, 16.5], [0, 66, 10.5]]))


@pytest.mark.parametrize("rotation, corner", [(90, "bottom-left"), (-90, "top-right"), (180, "bottom-right")])
def test_video_rotation_metadata_is_applied(tmp_path, rotation, corner):
    # The white marker sits at the stored frame's top-left corner; a display rotation moves it.
    path = write_video(tmp_path / "rot.mp4", numbered_frames(2, 20, 30), rotation=rotation)
    source = open_source(path)
    expected_hw = (20, 30) if rotation == 180 else (30, 20)
    assert (source.info.height, source.info.width) == expected_hw
    image = next(iter(source)).image
    assert image.shape[1:] == expected_hw
    h, w = expected_hw
    corners = {
        "top-left": image[:, :3, :3],
        "top-right": image[:, :3, w - 3 :],
        "bottom-left": image[:, h - 3 :, :3],
        "bottom-right": image[:, h - 3 :, w - 3 :],
    }
    assert {name for name, patch in corners.items() if patch.float().mean() > 200} == {corner}


def test_image_folder_natural_order_and_mixed_modes(tmp_path):
    # Natural sort: frame2 before frame10; every mode becomes RGB uint8.
    gray = Image.fromarray(np.full((10, 12), 100, np.uint8), "L")
    rgba = Image.fromarray(np.dstack([np.full((10, 12, 3), 50, np.uint8), np.zeros((10, 12), np.uint8)]), "RGBA")
    gray16 = Image.fromarray(np.full((10, 12), 40000, np.uint16))
    palette = Image.fromarray(np.full((10, 12, 3), 200, np.uint8)).convert("P")
    gray.save(tmp_path / "frame10.png")
    rgba.save(tmp_path / "frame2.png")
    gray16.save(tmp_path / "frame1.PNG")
    palette.save(tmp_path / "frame30.bmp")
    Image.fromarray(np.full((10, 12, 3), 90, np.uint8)).save(tmp_path / "frame31.JPG", quality=100)
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path)
    assert isinstance(source, ImageFolderSource)
    assert [p.name for p in source.files] == ["frame1.PNG", "frame2.png", "frame10.png", "frame30.bmp", "frame31.JPG"]
    frames = list(source)
    assert all(f.image.shape == (3, 10, 12) and f.image.dtype == torch.uint8 for f in frames)
    means = [float(f.image.float().mean()) for f in frames]
    assert means[0] == pytest.approx(40000 * 255 / 65535, abs=0.6)
    assert means[1] == pytest.approx(50)  # alpha dropped, colour kept
    assert means[2] == pytest.approx(100)
    assert means[3] == pytest.approx(200, abs=2)
    assert means[4] == pytest.approx(90, abs=2)
    assert [f.index for f in open_source(tmp_path, start=1, stride=2)] == [0, 1]
    assert [p.name for p in open_source(tmp_path, start=1, stride=2).files] == ["frame2.png", "frame30.bmp"]


def test_image_folder_with_different_sizes_gets_per_frame_intrinsics(tmp_path):
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((30, 15, 3), np.uint8)).save(tmp_path / "b.png")
    frames = list(open_source(tmp_path))
    torch.testing.assert_close(frames[0].K, torch.tensor([[40.0, 0, 10], [0, 40, 5]]))
    torch.testing.assert_close(frames[1].K, torch.tensor([[60.0, 0, 7.5], [0, 60, 15]]))


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "I;16", "RGB"])
def test_single_image_any_mode(tmp_path, mode):
    array = np.random.default_rng(0).integers(0, 255, (9, 7, 4)).astype(np.uint8)
    image = {
        "L": Image.fromarray(array[..., 0], "L"),
        "RGBA": Image.fromarray(array, "RGBA"),
        "LA": Image.fromarray(array[..., :2], "LA"),
        "I;16": Image.fromarray(array[..., 0].astype(np.uint16) * 257),
        "RGB": Image.fromarray(array[..., :3], "RGB"),
    }[mode]
    path = tmp_path / "person.png"
    image.save(path)
    source = open_source(path)
    assert isinstance(source, ImageSource)
    frames = list(source)
    assert len(frames) == 1 and frames[0].index == 0
    rgb = frames[0].image
    assert rgb.shape == (3, 9, 7) and rgb.dtype == torch.uint8
    expected = array[..., :3] if mode in ("RGBA", "RGB") else np.repeat(array[..., :1], 3, axis=2)
    np.testing.assert_array_equal(rgb.permute(1, 2, 0).numpy(), expected)


def test_exif_orientation_of_jpeg_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert open_source(tmp_path / "phone.jpg").image.shape == (3, 20, 10)


def test_stream_source_reads_lazily_with_stride(tmp_path):
    # OpenCV opens files too, which stands in for a camera or URL here.
    path = write_video(tmp_path / "clip.mp4", numbered_frames(8, 16, 16))
    source = StreamSource(str(path), start=1, stride=2, max_frames=3)
    assert source.info.kind == "stream" and (source.info.height, source.info.width) == (16, 16)
    assert [frame_number(f.image) for f in source] == [1, 3, 5]


def test_open_source_dispatches_streams_and_cameras(monkeypatch):
    opened = []

    class FakeCapture:
        def __init__(self, target):
            opened.append(target)

        def isOpened(self):
            return False

    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    for spec, target in [
        ("0", 0),
        ("rtsp://camera.local/stream", "rtsp://camera.local/stream"),
        ("HTTP://x/y.mjpg", "HTTP://x/y.mjpg"),
    ]:
        with pytest.raises(InputError, match="cannot open camera or stream"):
            open_source(spec)
        assert opened[-1] == target


def test_intrinsics_options():
    K = Intrinsics.parse("500,510,320.5,240").matrix(480, 640)
    torch.testing.assert_close(K, torch.tensor([[500.0, 0, 320.5], [0, 510, 240]]))
    K = Intrinsics.parse(fov_deg=90.0).matrix(480, 640)
    torch.testing.assert_close(K, torch.tensor([[320.0, 0, 320], [0, 320, 240]]))
    fov = 2 * math.degrees(math.atan(320 / Intrinsics.parse(fov_deg=60).matrix(480, 640)[0, 0].item()))
    assert fov == pytest.approx(60.0)
    torch.testing.assert_close(Intrinsics().matrix(481, 640), torch.tensor([[1280.0, 0, 320], [0, 1280, 240.5]]))
    for bad in ["1,2,3", "a,b,c,d", "0,1,2,3", "1,2,3,nan"]:
        with pytest.raises(InputError, match="fx,fy,cx,cy"):
            Intrinsics.parse(bad)
    with pytest.raises(InputError, match="field of view"):
        Intrinsics.parse(fov_deg=180)
    with pytest.raises(InputError, match="not both"):
        Intrinsics.parse("1,1,1,1", fov_deg=50)


# ----------------------------------------------------------------------------------------------
# Bad inputs: one-line InputError naming the file


def _assert_names(err: pytest.ExceptionInfo, name: str) -> None:
    message = str(err.value)
    assert name in message and "\n" not in message


@pytest.mark.parametrize("name", ["missing.mp4", "missing.png", "missing_dir/"])
def test_missing_inputs(tmp_path, name):
    with pytest.raises(InputError) as err:
        open_source(tmp_path / name)
    _assert_names(err, name.rstrip("/"))


@pytest.mark.parametrize("name", ["empty.mp4", "empty.jpg", "empty.mkv"])
def test_empty_files(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputError, match="empty") as err:
        open_source(tmp_path / name)
    _assert_names(err, name)


@pytest.mark.parametrize("name", ["garbage.mp4", "garbage.png", "garbage.webm", "text.avi"])
def test_undecodable_files(tmp_path, name):
    data = b"hello, this is not a video\n" * 50 if name.startswith("text") else np.random.default_rng(1).bytes(4096)
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError, match="cannot") as err:
        open_source(tmp_path / name)
    _assert_names(err, name)


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no images") as err:
        open_source(tmp_path)
    _assert_names(err, tmp_path.name)


def test_folder_with_a_corrupt_image_names_that_image(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "000.png")
    (tmp_path / "001.png").write_bytes(b"\x89PNG broken")
    source = open_source(tmp_path)
    with pytest.raises(InputError) as err:
        list(source)
    _assert_names(err, "001.png")


@pytest.mark.parametrize(
    "name, codec, pix_fmt", [("noframes.avi", "mjpeg", "yuvj444p"), ("noframes.mp4", "libx264", "yuv420p")]
)
def test_video_without_frames(tmp_path, name, codec, pix_fmt):
    path = write_video(tmp_path / name, [], codec=codec, pix_fmt=pix_fmt)
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="no frames|no video stream") as err:
        open_source(path)
    _assert_names(err, name)


def test_start_past_the_end(tmp_path):
    path = write_video(tmp_path / "short.mp4", numbered_frames(3, 16, 16))
    with pytest.raises(InputError, match="past the end") as err:
        open_source(path, start=5)
    _assert_names(err, "short.mp4")
    with pytest.raises(InputError, match="stride"):
        open_source(path, stride=0)
    with pytest.raises(InputError, match="only frame 0"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "one.png")
        open_source(tmp_path / "one.png", start=1)


def test_16_bit_colour_png_keeps_the_top_8_bits(tmp_path):
    import cv2

    bgr = np.zeros((5, 6, 3), np.uint16)
    bgr[..., 2], bgr[..., 1] = 65535, 30000  # red full, green ~46 %
    cv2.imwrite(str(tmp_path / "deep.png"), bgr)
    rgb = open_source(tmp_path / "deep.png").image
    assert rgb.dtype == torch.uint8
    assert rgb[:, 0, 0].tolist() == [255, round(30000 * 255 / 65535), 0]


@pytest.mark.parametrize("name, codec, pix_fmt", [("long.mp4", "libx264", "yuv444p"), ("long.mkv", "ffv1", "yuv420p")])
def test_late_start_seeks_to_the_exact_frame(tmp_path, name, codec, pix_fmt):
    import av

    frames = io_fixtures.numbered_frames(90, 16, 16)
    path = io_fixtures.write_video(tmp_path / name, frames, codec=codec, pix_fmt=pix_fmt, gop_size=10)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == 10
    source = open_source(path, start=63, stride=4, max_frames=5)
    # Frame k has brightness (20 + 10 k) mod 256, so 63..79 are 138, 178, 218, 2 (=258), 42.
    assert [round(brightness(f.image)) for f in source] == pytest.approx([138, 178, 218, 2, 42], abs=2)
    sequential = [round(brightness(f.image)) for f in open_source(path, start=40, stride=1)]
    assert sequential[23] == pytest.approx(138, abs=2) and len(sequential) == 50
