"""Cost of the tracker's per-frame bookkeeping, without the network.

Runs :class:`comotion.tracking.TrackingEngine` on synthetic people (N stick figures on a grid,
detected every frame with a little jitter) with an update function that only moves keypoints, so
the time measured is the tracker's own: matching (N x M similarity), health statistics, the
track-track similarity and collapse handling, deletion and output.  Two scenes per track count:

* ``separate``: nobody overlaps (the usual case);
* ``all-collapsed``: every pair counts as collapsed each frame (overlap_thr 0, rules that would
  end tracks disabled), the worst case of the per-pair collapse log.

With ``--network PRESET`` it also times the network work of a frame of a random-weight model of
that preset (detection + one update step of N tracks) on the same device, for comparison.

    python benchmarks/bench_tracker.py --tracks 8,32,64 --frames 200 [--network tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from comotion.model.detect import Detections
from comotion.tracking import TrackerConfig, TrackingEngine, TrackState

FIGURE = torch.randn(27, 2, generator=torch.Generator().manual_seed(0)) * 40.0
IMAGE_SIZE = (1080, 1920)
HIDDEN_DIM = 512


def grid_positions(num: int) -> torch.Tensor:
    """``(num, 2)`` pelvis pixels on a grid wide enough that nobody overlaps."""
    columns = 16
    index = torch.arange(num)
    return torch.stack([100.0 + 110.0 * (index % columns), 200.0 + 220.0 * (index // columns)], dim=-1)


def people(positions: torch.Tensor) -> Detections:
    num = len(positions)
    keypoints_2d = FIGURE + positions[:, None, :]
    trans = torch.cat([positions / 100.0, torch.full((num, 1), 5.0)], dim=-1)
    return Detections(
        betas=torch.ones(num, 10),
        pose=torch.zeros(num, 72),
        trans=trans,
        keypoints_3d=torch.cat([keypoints_2d / 100.0, torch.full((num, 27, 1), 5.0)], dim=-1),
        keypoints_2d=keypoints_2d,
        conf_logit=torch.full((num,), 3.0),
        candidate_index=torch.arange(num),
    )


def jitter_update(tracks: TrackState) -> TrackState:
    """Stand-in for the network: a small random move of every track."""
    shift = torch.randn(len(tracks), 1, 2) * 0.5
    return tracks.replace(
        keypoints_2d=tracks.keypoints_2d + shift,
        trans=tracks.trans + torch.cat([shift[:, 0] / 100.0, torch.zeros(len(tracks), 1)], dim=-1),
        hidden=tracks.hidden,
    )


def time_engine(num: int, frames: int, config: TrackerConfig) -> list[float]:
    """Seconds per frame (after the first, which creates the tracks)."""
    engine = TrackingEngine(config, HIDDEN_DIM, IMAGE_SIZE)
    positions = grid_positions(num)
    engine.step(people(positions), jitter_update)
    assert len(engine.tracks) == num, f"expected {num} tracks, got {len(engine.tracks)}"
    times = []
    for _ in range(frames):
        detections = people(positions + torch.randn(num, 2))
        start = time.perf_counter()
        engine.step(detections, jitter_update)
        times.append(time.perf_counter() - start)
    assert len(engine.tracks) == num, "tracks were lost during the benchmark"
    return times


def time_network(preset: str, num: int, repeats: int) -> float:
    """Median seconds of detection + one update of ``num`` tracks, random weights."""
    from comotion.body import load_body_model
    from comotion.model import CoMotion, get_preset

    model = CoMotion(get_preset(preset), load_body_model("anny")).eval()
    size = model.config.input_resolution
    image = torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
    hidden = torch.zeros(num, model.config.update.hidden_dim)
    state = people(grid_positions(num))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        frame = model.prepare(image)
        _, features = model.detect(frame)
        model.update(features, state.betas, state.pose, state.trans, state.keypoints_3d, hidden)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", default="8,32,64", help="track counts (default 8,32,64)")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--network", default=None, metavar="PRESET", help="also time a random-weight network")
    parser.add_argument("--network-repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    scenes = {
        "separate": TrackerConfig(),
        "all-collapsed": TrackerConfig(
            overlap_thr=-1.0, overlap_window=10_000, overlap_time_thr=9_999, young_age=0, new_age=0
        ),
    }
    print(f"tracker bookkeeping, {args.frames} frames, torch threads {args.threads}, hidden {HIDDEN_DIM}")
    print(f"{'tracks':>6} {'scene':>14} {'median ms':>10} {'p90 ms':>8}" + ("  network ms" if args.network else ""))
    with torch.inference_mode():
        for num in (int(n) for n in args.tracks.split(",")):
            network = time_network(args.network, num, args.network_repeats) if args.network else None
            for name, config in scenes.items():
                times = sorted(time_engine(num, args.frames, config))
                median, p90 = statistics.median(times) * 1e3, times[int(0.9 * len(times))] * 1e3
                line = f"{num:>6} {name:>14} {median:>10.2f} {p90:>8.2f}"
                if network is not None:
                    line += f"  {network * 1e3:10.1f} ({args.network}: {100 * median / (network * 1e3):.1f}% of it)"
                print(line)


if __name__ == "__main__":
    main()
