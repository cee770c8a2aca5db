"""Does the update module follow people?  Unroll it from the ground truth, with and without the video.

On held-out clips (rendered as ``comotion demo`` renders them; seeds 1000 and up by default),
every person present in the first frame becomes a track with their ground-truth state, its root
optionally moved by ``--jitter`` pixels.  The update module alone (no detector, no track
management) then carries the tracks through the clip twice:

* ``video``: each step sees its own frame (what the tracker does);
* ``frozen``: every step sees the first frame again (a module that ignores the image scores the
  same in both).

Printed per clip and on average: the mean 2-D keypoint error in pixels over the frames where the
person is present, for both runs, and ``still``, the error of leaving everybody at their
first-frame keypoints (how far the people move).  A module that reads the image has a
``video`` error well below ``frozen`` and ``still``.

    python tools/probe_update.py --weights default --seeds 1000-1003 --jitter 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from comotion.commands import demo
from comotion.errors import report_errors
from comotion.train.stages import jitter_translation


def unroll_errors(model, clip, jitter_px: float, frozen: bool, seed: int = 0) -> np.ndarray:
    """Per (frame, person present) 2-D keypoint errors, pixels, of the update module unrolled
    from the ground truth of the clip's first frame; ``frozen`` feeds the first frame every step."""
    gt = clip.gt
    K = torch.as_tensor(gt.K[0], dtype=torch.float32)
    people = np.flatnonzero(gt.present[:, 0])
    betas, pose, trans = (torch.as_tensor(a[0, people], dtype=torch.float32) for a in (gt.betas, gt.pose, gt.trans))
    if jitter_px > 0:
        trans = jitter_translation(trans, K, jitter_px, 0.0, torch.Generator().manual_seed(seed))
    keypoints_3d = model.body.keypoints(betas, pose, trans)
    hidden = torch.zeros(len(people), model.config.update.hidden_dim)
    errors, features = [], None
    for t, frame in enumerate(clip.frames()):
        if features is None or not frozen:
            _, features = model.detect(model.prepare(torch.from_numpy(frame.copy()).permute(2, 0, 1), K))
        out = model.update(features, betas, pose, trans, keypoints_3d, hidden)
        pose, trans, keypoints_3d, hidden = out.pose, out.trans, out.keypoints_3d, out.hidden
        error = np.linalg.norm(out.keypoints_2d.cpu().numpy() - gt.keypoints_2d[t, people], axis=-1).mean(-1)
        errors.append(error[gt.present[people, t]])
    return np.concatenate(errors)


def still_errors(clip) -> np.ndarray:
    """Errors of keeping every first-frame person at their first-frame keypoints."""
    gt = clip.gt
    people = np.flatnonzero(gt.present[:, 0])
    error = np.linalg.norm(gt.keypoints_2d[:, people] - gt.keypoints_2d[:1, people], axis=-1).mean(-1)  # (T, P)
    return error[gt.present[people].T]


@report_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default", help="model file (or 'default')")
    parser.add_argument("--seeds", default="1000-1003", help="held-out clip seeds, FIRST-LAST")
    parser.add_argument("--jitter", type=float, default=0.0, help="move the initial roots by this many pixels (std)")
    demo.add_held_out_arguments(parser)
    parser.add_argument("--workdir", default="runs/tune", help="clips go here (shared with tune_tracker.py, reused)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = demo.held_out_model(args)
    clip_args = demo.clip_arguments(args)
    totals = {"video": [], "frozen": [], "still": []}
    for seed in demo.seed_range(args.seeds):
        clip = demo.cached_clip(clip_args, seed, Path(args.workdir) / f"seed{seed}")
        errors = {
            "video": unroll_errors(model, clip, args.jitter, frozen=False, seed=seed),
            "frozen": unroll_errors(model, clip, args.jitter, frozen=True, seed=seed),
            "still": still_errors(clip),
        }
        for name, values in errors.items():
            totals[name].append(values)
        print(f"seed {seed}: " + "  ".join(f"{name} {values.mean():6.1f} px" for name, values in errors.items()), flush=True)
    print("mean:      " + "  ".join(f"{name} {np.concatenate(v).mean():6.1f} px" for name, v in totals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
