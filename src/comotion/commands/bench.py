"""``comotion bench``: latency and memory of the network stages for a configuration and device.

Reports the median over ``--repeats`` runs (after one warm-up) of

* ``detect_network``: encoder + detection head + pyramid fusion (one image);
* ``decode_nms``: decoding the confident candidates to SMPL keypoints + OKS-NMS as the network
  produced them (with random weights: all of them), and with 20 (a typical trained-model frame)
  and ``--candidates`` candidates forced above the threshold (the reference needs ~48 s/frame
  when ~900 candidates pass);
* ``update_N``: one update step for N tracks (``--tracks``), including the image keys/values
  (``update_image_keys_values``) that later update calls of the same frame reuse;
* ``tracked_frame_estimate``: detect_network + decode_nms of 20 candidates + 2 x update_8 - the
  reused keys/values (a tracker with ~8 live tracks updates them and initialises newcomers: two
  update calls per frame);

plus the peak resident memory of the process.  Weights are random (seeded) unless ``--weights``
is given: speed does not depend on their values.  With ``--bf16`` the network runs under bfloat16
autocast and the largest deviation from float32 is reported as well.  See docs/model.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

TYPICAL_CANDIDATES = 20  # confident candidates of a trained model on a crowded frame


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="tiny", help="model preset: official, parity-small, tiny, ... (default tiny)"
    )
    parser.add_argument("--weights", default=None, metavar="PATH", help="load these weights instead of random ones")
    parser.add_argument(
        "--body-model", default="anny", metavar="anny|PATH", help="body model for decoding (default anny)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--resolution", type=int, default=None, metavar="PX",
                        help="side of the square input frame (default: the network input size)")  # fmt: skip
    parser.add_argument("--tracks", default="1,8,32,64", metavar="N,N,...", help="track counts for the update step")
    parser.add_argument("--candidates", type=int, default=1000, help="candidates forced above threshold (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bf16", action="store_true", help="run the networks under bfloat16 autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile the two networks")
    parser.add_argument("--no-channels-last", action="store_true", help="keep the encoder in NCHW memory layout")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    parser.add_argument("--json", action="store_true", help="print only a JSON object")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _median_seconds(fn, repeats: int, synchronize) -> float:
    fn()  # warm-up (also triggers compilation)
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _build_model(args):
    import torch

    from comotion.body import load_body_model
    from comotion.model import CoMotion, get_preset

    if args.weights:
        return CoMotion.from_pretrained(args.weights, body_model=args.body_model)
    config = get_preset(args.config)
    torch.manual_seed(args.seed)
    return CoMotion(config, load_body_model(args.body_model)).eval()


def measure(args) -> dict:
    """Run every measurement; returns the report as a dict (times in milliseconds)."""
    import contextlib
    import dataclasses

    import torch

    from comotion.errors import InputError
    from comotion.model import FrameFeatures
    from comotion.model.detect import decode_candidates, select_candidates

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    track_counts = [int(n) for n in str(args.tracks).split(",") if n.strip()]
    if any(n < 1 for n in track_counts):
        raise InputError(f"--tracks must list positive counts, got {args.tracks!r}")
    model = _build_model(args).to(device)
    rss_after_build = _peak_rss_mb()
    if not args.no_channels_last:
        model.detection_module.to(memory_format=torch.channels_last)
    detection_net, update_net = model.detection_module, model.update_module
    if args.compile:
        model.detection_module = torch.compile(detection_net)
        model.update_module = torch.compile(update_net)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def autocast():
        if args.bf16:
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    generator = torch.Generator().manual_seed(args.seed)
    side = args.resolution or model.config.input_resolution
    image = torch.randint(0, 256, (3, side, side), dtype=torch.uint8, generator=generator)
    frame = model.prepare(image)
    network_input = (
        frame.image.contiguous(memory_format=torch.channels_last) if not args.no_channels_last else frame.image
    )
    report: dict = {
        "config": args.config if not args.weights else str(args.weights),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "resolution": side,
        "network_input": model.config.input_resolution,
        "bf16": bool(args.bf16),
        "compile": bool(args.compile),
        "channels_last": not args.no_channels_last,
        "parameters": {
            "detection": sum(p.numel() for p in detection_net.parameters()),
            "update": sum(p.numel() for p in update_net.parameters()),
        },
        "ms": {},
    }
    ms = report["ms"]

    with torch.inference_mode():

        def run_detection():
            with autocast():
                return model.detection_module(network_input, frame.K_crop)

        ms["detect_network"] = 1000 * _median_seconds(run_detection, args.repeats, synchronize)
        output = run_detection().float()

        def run_selection(out):
            return select_candidates(
                out, model.mean_pose, model.body, frame.K,
                keypoint_normalizer=model.config.keypoint_normalizer(frame.image_size),
                std=0.08, iou_thr=0.4, conf_thr=0.1, transitive=model.config.transitive_nms,
            )  # fmt: skip

        ms["decode_nms"] = 1000 * _median_seconds(lambda: run_selection(output), args.repeats, synchronize)
        report["confident_candidates"] = int((torch.sigmoid(output.conf) > 0.1).sum())
        # Random weights make every candidate confident; a trained model yields a few dozen.
        # Force a typical count and the stress count above the threshold instead.
        for wanted in sorted({TYPICAL_CANDIDATES, args.candidates}):
            count = min(wanted, output.conf.shape[1])
            forced_conf = torch.full_like(output.conf, -5.0)
            chosen = torch.randperm(output.conf.shape[1], generator=generator)[:count].to(device)
            forced_conf[0, chosen] = torch.linspace(5.0, 0.0, count, device=device)
            forced = dataclasses.replace(output, conf=forced_conf)
            ms[f"decode_nms_{count}_candidates"] = 1000 * _median_seconds(
                lambda forced=forced: run_selection(forced), args.repeats, synchronize
            )
            report[f"nms_survivors_of_{count}"] = len(run_selection(forced))

        features = FrameFeatures(output.image_features, frame.K_crop, frame.K, frame.image_size)
        pool = decode_candidates(
            output, torch.arange(output.conf.shape[1], device=device), model.mean_pose, model.body, frame.K
        )
        hidden_dim = model.config.update.hidden_dim
        for count in sorted(set(track_counts) | {8}):
            take = torch.arange(count, device=device) % len(pool)
            tracks = (pool.betas[take], pool.pose[take], pool.trans[take], pool.keypoints_3d[take])
            hidden = torch.zeros(count, hidden_dim, device=device)

            def run_update(tracks=tracks, hidden=hidden):
                # A fresh FrameFeatures: the first update of a frame also computes the image keys/values.
                with autocast():
                    return model.update(dataclasses.replace(features, keys_values=None), *tracks, hidden)

            ms[f"update_{count}"] = 1000 * _median_seconds(run_update, args.repeats, synchronize)

        def run_keys_values():
            with autocast():
                return model.update_module.image_keys_values(features.image_features)

        ms["update_image_keys_values"] = 1000 * _median_seconds(run_keys_values, args.repeats, synchronize)
        # Existing tracks and newcomers are updated in two calls; the second reuses the keys/values.
        typical = min(TYPICAL_CANDIDATES, output.conf.shape[1])
        ms["tracked_frame_estimate"] = (
            ms["detect_network"]
            + ms[f"decode_nms_{typical}_candidates"]
            + 2 * ms["update_8"]
            - ms["update_image_keys_values"]
        )
        if 8 not in track_counts:
            del ms["update_8"]

        if args.bf16:
            model.detection_module, model.update_module = detection_net, update_net
            reference = detection_net(network_input, frame.K_crop)
            report["bf16_max_abs_deviation"] = {
                name: float((getattr(output, name) - getattr(reference, name)).abs().max())
                for name in ("image_features", "betas", "trans", "conf")
            }
    report["peak_rss_mb"] = {"after_build": rss_after_build, "final": _peak_rss_mb()}
    return report


def _print_table(report: dict) -> None:
    print(
        f"config {report['config']} on {report['device']} ({report['threads']} threads), "
        f"{report['resolution']}x{report['resolution']} frame -> {report['network_input']}px network input; "
        f"bf16={report['bf16']} compile={report['compile']} channels_last={report['channels_last']}"
    )
    params = report["parameters"]
    print(f"parameters: detection {params['detection']:,}, update {params['update']:,}")
    for name, value in report["ms"].items():
        print(f"  {name:<32} {value:10.1f} ms")
    print(f"  confident candidates (sigmoid > 0.1): {report['confident_candidates']}")
    for key, value in report.items():
        if key.startswith("nms_survivors"):
            print(f"  {key}: {value}")
    if "bf16_max_abs_deviation" in report:
        print(f"  bf16 max |deviation| from float32: {report['bf16_max_abs_deviation']}")
    rss = report["peak_rss_mb"]
    print(f"peak RSS: {rss['final']:.0f} MB (after building the model: {rss['after_build']:.0f} MB)")


def run(args) -> int:
    report = measure(args)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_table(report)
    return 0
