"""``comotion detect``: detect people in single images (no tracking).

Uses the reference's single-image NMS settings (OKS std 0.15, similarity threshold 0.4, confidence
threshold 0.25).  Any image mode works (greyscale, RGBA, 16-bit are converted to RGB; the
reference fails on them).  For each image ``OUTDIR/<stem>.npz`` and ``OUTDIR/<stem>.json`` hold
the detections and, with ``--overlay``, ``OUTDIR/<stem>_overlay.png`` shows them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SINGLE_IMAGE_NMS = {"std": 0.15, "iou_thr": 0.4, "conf_thr": 0.25}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from comotion.commands.track import (
        HelpFormatter,
        add_camera_arguments,
        add_model_arguments,
    )

    parser.formatter_class = HelpFormatter
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image file(s): jpg, png, bmp, webp (any colour mode)"
    )
    parser.add_argument(
        "-o", "--output", default=".", metavar="OUTDIR", help="folder for <stem>.npz / <stem>.json / overlays"
    )
    add_model_arguments(parser)
    add_camera_arguments(parser)
    nms = parser.add_argument_group("candidate selection (defaults: the reference's single-image settings)")
    nms.add_argument("--std", type=float, default=SINGLE_IMAGE_NMS["std"], help="keypoint-similarity falloff (OKS std)")
    nms.add_argument(
        "--iou-thr", type=float, default=SINGLE_IMAGE_NMS["iou_thr"], help="suppress candidates more similar than this"
    )
    nms.add_argument(
        "--conf-thr", type=float, default=SINGLE_IMAGE_NMS["conf_thr"], help="minimum confidence (after sigmoid)"
    )
    parser.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.png with meshes drawn")
    parser.add_argument(
        "--fixed-quirks",
        action="store_true",
        help="use greedy (transitive) NMS and resolution-independent keypoint similarity instead of the reference's",
    )


def detection_record(detections, body, K, image_size) -> dict:
    """Numpy arrays of one image's detections (shapes and units as in docs/outputs.md)."""
    import numpy as np
    import torch

    from comotion.geometry.camera import project_points

    def array(t):
        return t.detach().cpu().numpy()

    record = {
        "betas": array(detections.betas),
        "pose": array(detections.pose),
        "trans": array(detections.trans),
        "keypoints_3d": array(detections.keypoints_3d),
        "keypoints_2d": array(detections.keypoints_2d),
        "conf_logit": array(detections.conf_logit).reshape(-1),
        "K": array(K),
        "image_size": np.asarray(image_size, np.int32),
    }
    record["confidence"] = 1.0 / (1.0 + np.exp(-record["conf_logit"]))
    if getattr(body, "has_coco", False) and len(record["betas"]):
        with torch.no_grad():
            coco = body(detections.betas, detections.pose, detections.trans, coco=True).coco
        record["coco_2d"] = array(project_points(coco, K.to(coco)))
    return record


def run(args) -> int:
    import torch

    # A context, not torch.set_grad_enabled(False): the CLI also runs in-process (tests, demo)
    # and must not switch off autograd for the rest of the interpreter.
    with torch.no_grad():
        return _run(args)


def _run(args) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from comotion.commands.track import load_model
    from comotion.io.render import draw_meshes
    from comotion.io.sources import ImageSource, Intrinsics

    intrinsics = Intrinsics.parse(args.intrinsics, args.fov)
    sources = [ImageSource(path, intrinsics=intrinsics) for path in args.images]  # fail early on bad files
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)
    model = load_model(args)
    for source in sources:
        frame = next(iter(source))
        prepared = model.prepare(frame.image, frame.K)
        detections, _ = model.detect(prepared, std=args.std, iou_thr=args.iou_thr, conf_thr=args.conf_thr)
        record = detection_record(detections, model.body, frame.K, frame.image.shape[1:])
        record["body_model"] = np.array(model.body.name)
        stem = Path(source.info.name).stem
        np.savez(outdir / f"{stem}.npz", **record)
        summary = {
            "image": source.info.name,
            "body_model": model.body.name,
            "nms": {"std": args.std, "iou_thr": args.iou_thr, "conf_thr": args.conf_thr},
            "detections": [
                {
                    key: value[i].tolist()
                    for key, value in record.items()
                    if key not in ("K", "image_size", "body_model")
                }
                for i in range(len(record["betas"]))
            ],
            "K": record["K"].tolist(),
            "image_size": record["image_size"].tolist(),
        }
        (outdir / f"{stem}.json").write_text(json.dumps(summary) + "\n")
        if args.overlay:
            rgb = frame.image.permute(1, 2, 0).numpy()
            if len(record["betas"]):
                with torch.no_grad():
                    vertices = model.body(detections.betas, detections.pose, detections.trans, vertices="all").vertices
                ids = np.arange(1, len(record["betas"]) + 1)
                rgb = draw_meshes(rgb, vertices.cpu().numpy(), model.body.faces.cpu().numpy(), record["K"], ids)
            Image.fromarray(rgb).save(outdir / f"{stem}_overlay.png")
        print(f"{source.info.name}: {len(record['betas'])} people -> {outdir / (stem + '.npz')}")
    return 0
