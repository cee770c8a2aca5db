"""The CoMotion model: detection + recurrent pose update + body model, with an inference API.

Typical use (the tracker does exactly this per frame)::

    model = CoMotion.from_pretrained("default")
    frame = model.prepare(image, K)                     # (3, H, W) uint8/float, K (2, 3) or None
    detections, features = model.detect(frame)
    updated = model.update(features, betas, pose, trans, keypoints_3d, hidden)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from comotion.body import BUILTIN_BODY_MODELS, BodyModel, load_body_model
from comotion.errors import ComotionError, InputError
from comotion.geometry.camera import project_points
from comotion.geometry.rotations import apply_pose_delta
from comotion.model.checkpoint import (
    DETECTION_CHECKPOINT,
    REFINE_CHECKPOINT,
    find_extra_smpl_reference,
    llama_head_dim,
    load_model_file,
    load_strict,
    read_mean_pose,
    read_state_dict,
    save_model_file,
)
from comotion.model.config import ModelConfig, get_preset
from comotion.model.detect import DetectionNetwork, Detections, decode_candidates, select_candidates
from comotion.model.preprocess import as_image_tensor, prepare_image
from comotion.model.update import UpdateNetwork

WEIGHTS_DIR = Path(__file__).parent / "weights"
PACKAGED_WEIGHTS = {"default": ("default.safetensors", "default.pt")}


@dataclass
class PreparedFrame:
    """One frame ready for the network.

    Attributes:
        image: ``(1, 3, R, R)`` padded, resized, ImageNet-normalised float32.
        K_crop: ``(1, 2, 3)`` intrinsics of that network input (pixels).
        K: ``(2, 3)`` intrinsics of the original image (pixels).
        image_size: ``(H, W)`` of the original image.
    """

    image: torch.Tensor
    K_crop: torch.Tensor
    K: torch.Tensor
    image_size: tuple[int, int]


@dataclass
class FrameFeatures:
    """What the update step needs from a frame: fused features ``(1, D, R/8, R/8)`` and cameras.

    ``keys_values`` caches the update module's image keys/values once the first update of the
    frame computed them (the tracker updates existing and new tracks in separate calls).
    """

    image_features: torch.Tensor
    K_crop: torch.Tensor
    K: torch.Tensor
    image_size: tuple[int, int]
    keys_values: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)


@dataclass
class UpdatedTracks:
    """Tracks moved to the current frame by the update step (N of them, input order).

    Attributes:
        pose: ``(N, 72)`` new pose (mean pose composed with the predicted deltas).
        trans: ``(N, 3)`` camera frame, metres.
        keypoints_3d: ``(N, 27, 3)`` camera frame, metres.
        keypoints_2d: ``(N, 27, 2)`` original-image pixels.
        hidden: ``(N, H)`` new recurrent state.
    """

    pose: torch.Tensor
    trans: torch.Tensor
    keypoints_3d: torch.Tensor
    keypoints_2d: torch.Tensor
    hidden: torch.Tensor

    def __len__(self) -> int:
        return self.pose.shape[0]


def reference_mean_pose() -> torch.Tensor:
    """Neutral mean pose of a fresh model: the body turned into the y-down camera frame, limbs at rest."""
    mean_pose = torch.zeros(72)
    mean_pose[0] = math.pi
    return mean_pose


def _resolve_body(body_model, trained_with: str | None = None, coco_regressor=None) -> BodyModel:
    """The given body model, else the packaged one the weights were trained with."""
    if isinstance(body_model, BodyModel):
        return body_model
    if body_model is not None:
        return load_body_model(body_model, coco_regressor=coco_regressor)
    if trained_with in BUILTIN_BODY_MODELS:
        return load_body_model(trained_with, coco_regressor=coco_regressor)
    raise InputError(
        f"these weights were trained with body model '{trained_with}', which is not packaged: "
        "pass body_model=PATH (--body-model) with that model's file"
    )


class CoMotion(nn.Module):
    """Detection network, update network, body model and mean pose.

    Args:
        config: network configuration (see :mod:`comotion.model.config`).
        body: body model turning SMPL parameters into keypoints.
        mean_pose: ``(72,)`` tensor, the pose the network's deltas are composed with; default:
            the body facing the camera upright (root rotated by pi about x), limbs at rest.
    """

    def __init__(self, config: ModelConfig, body: BodyModel, mean_pose: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.detection_module = DetectionNetwork(config)
        self.update_module = UpdateNetwork(config)
        self.body = body
        # Tensor methods only (no factory functions): the loaders build models under torch.device("meta").
        mean_pose = reference_mean_pose() if mean_pose is None else mean_pose.detach().float()
        self.register_buffer("mean_pose", mean_pose.reshape(72).clone())
        # TrackerConfig fields tuned for these weights (saved with them); empty = reference defaults.
        self.tracker_settings: dict = {}

    @property
    def device(self) -> torch.device:
        return self.mean_pose.device

    # ----------------------------------------------------------------------------------------
    # Construction and persistence

    @classmethod
    def from_official(
        cls,
        detection_checkpoint: str | Path,
        refine_checkpoint: str | Path,
        smpl_model_path: str | Path | BodyModel,
        extra_smpl_reference: str | Path | None = None,
        config: str | ModelConfig = "official",
        device: torch.device | str | None = None,
    ) -> CoMotion:
        """Build from the official checkpoints (strict key/shape check).

        Args:
            detection_checkpoint, refine_checkpoint: the two official state-dict files.
            smpl_model_path: SMPL neutral model file or folder (or a ready :class:`BodyModel`).
            extra_smpl_reference: the official ``extra_smpl_reference.pt``; default: searched
                next to the detection checkpoint (``./``, ``smpl/``, ``data/smpl/``).
            config: preset name or :class:`ModelConfig` matching the checkpoints' sizes.
        """
        config = get_preset(config) if isinstance(config, str) else dataclasses.replace(config)
        detection_state = read_state_dict(detection_checkpoint, "detection checkpoint")
        refine_state = read_state_dict(refine_checkpoint, "refine checkpoint")
        head_dim = llama_head_dim(refine_state, config.update.llama_heads, str(refine_checkpoint))
        if head_dim is not None and head_dim != config.update.llama_head_dim:
            config.update = dataclasses.replace(config.update, llama_head_dim=head_dim)
        extra = find_extra_smpl_reference(extra_smpl_reference, Path(detection_checkpoint).expanduser().parent)
        body = _resolve_body(smpl_model_path, coco_regressor=extra)
        with torch.device("meta"):  # weights come from the checkpoints: skip random initialisation
            model = cls(config, body, read_mean_pose(extra))
        load_strict(
            model.detection_module, detection_state, f"detection checkpoint {detection_checkpoint}", assign=True
        )
        load_strict(model.update_module, refine_state, f"refine checkpoint {refine_checkpoint}", assign=True)
        return model.eval().to(device)

    @classmethod
    def from_pretrained(
        cls, path_or_name: str | Path = "default", *, body_model=None, device: torch.device | str | None = None
    ) -> CoMotion:
        """Load a model by packaged name (``"default"``), model file, or official-checkpoint folder.

        Args:
            path_or_name: ``"default"`` (the packaged model), a file in our format
                (``.safetensors``/``.pt``), or a folder with the two official checkpoints (and
                ``extra_smpl_reference.pt`` next to them or in ``smpl/`` / ``data/smpl/``).
            body_model: body model name, SMPL path or :class:`BodyModel`; default: the one the
                weights were trained with (for official weights: the SMPL file in the folder's
                ``smpl/`` or ``data/smpl/``).
            device: where to put the model (default CPU).
        """
        key = str(path_or_name)
        if key in PACKAGED_WEIGHTS:
            files = [WEIGHTS_DIR / name for name in PACKAGED_WEIGHTS[key] if (WEIGHTS_DIR / name).is_file()]
            if not files:
                raise ComotionError(
                    f"no packaged weights for '{key}' in this installation ({WEIGHTS_DIR}); train a model with "
                    "'comotion train' or pass a model file / the folder with the official checkpoints"
                )
            path = files[0]
        else:
            path = Path(path_or_name).expanduser()
        if path.is_dir():
            detection, refine = path / DETECTION_CHECKPOINT, path / REFINE_CHECKPOINT
            if not detection.is_file() or not refine.is_file():
                raise InputError(f"folder {path} does not hold {DETECTION_CHECKPOINT} and {REFINE_CHECKPOINT}")
            if body_model is None:
                found = [d for d in (path / "smpl", path / "data" / "smpl") if d.is_dir()]
                if not found:
                    raise InputError(
                        f"official weights need the SMPL neutral model: pass body_model=PATH (none found in {path}/smpl)"
                    )
                body_model = found[0]
            return cls.from_official(detection, refine, body_model, device=device)
        model_file = load_model_file(path)
        config = ModelConfig.from_dict(model_file.config)
        body = _resolve_body(body_model, model_file.body_model)
        state_dict = model_file.state_dict
        mean_pose = state_dict.get("mean_pose")
        if not isinstance(mean_pose, torch.Tensor) or mean_pose.numel() != 72:
            raise InputError(f"model file {path}: no 72-value mean_pose")
        with torch.device("meta"):  # weights come from the file: skip random initialisation
            model = cls(config, body, mean_pose)
        load_strict(model._network_state_module(), state_dict, f"model file {path}", assign=True)
        from comotion.tracking.config import checked_tracker_settings

        model.tracker_settings = checked_tracker_settings(model_file.tracker, f"model file {path}")
        return model.eval().to(device)

    def _network_state_module(self) -> nn.Module:
        """The part of the model our file format stores: both networks and the mean pose, not the body."""
        return _NetworkState(self)

    def save(self, path: str | Path, half: bool = False) -> Path:
        """Write config, weights, mean pose, body-model name and ``tracker_settings`` as one file
        (``.safetensors`` or ``.pt``); ``half`` stores the weights as float16 (half the size)."""
        state = self._network_state_module().state_dict()
        return save_model_file(path, self.config.to_dict(), state, self.body.name, self.tracker_settings, half)

    def set_input_resolution(self, side: int) -> None:
        """Run the networks at ``side x side`` pixels from now on (a multiple of ``pooling * 16``).

        No weight depends on it: a network trained at 256 px can run at 384 px, where small people
        cover more feature cells (the default model's card says which side it runs at).
        """
        config = dataclasses.replace(self.config, input_resolution=int(side))
        config.validate()
        self.config = self.detection_module.config = self.update_module.config = config

    # ----------------------------------------------------------------------------------------
    # Inference

    def prepare(self, image: torch.Tensor, K: torch.Tensor | None = None) -> PreparedFrame:
        """Pad/resize/normalise ``image (3, H, W)`` (uint8 0-255 or float 0-1) and crop ``K (2, 3)``.

        ``K=None`` uses the reference default (f = 2 max(H, W), principal point at the centre).
        """
        image = as_image_tensor(image).to(self.device)
        if K is not None:
            K = torch.as_tensor(K, dtype=torch.float32, device=self.device)
        network_image, K_crop, K = prepare_image(image, K, self.config.input_resolution)
        return PreparedFrame(network_image, K_crop, K, (image.shape[1], image.shape[2]))

    @torch.inference_mode()
    def detect(
        self, frame: PreparedFrame, *, std: float = 0.08, iou_thr: float = 0.4, conf_thr: float = 0.1
    ) -> tuple[Detections, FrameFeatures]:
        """Run the detection network and keep the OKS-NMS survivors.

        Defaults are the reference tracker's settings (the single-image demo uses std 0.15,
        conf_thr 0.25).  Returns the detections and the frame's features for :meth:`update`.
        """
        output = self.detection_module(frame.image, frame.K_crop).float()
        with _full_precision(self.device):
            detections = select_candidates(
                output,
                self.mean_pose,
                self.body,
                frame.K,
                keypoint_normalizer=self.config.keypoint_normalizer(frame.image_size),
                std=std,
                iou_thr=iou_thr,
                conf_thr=conf_thr,
                transitive=self.config.transitive_nms,
            )
        return detections, FrameFeatures(output.image_features, frame.K_crop, frame.K, frame.image_size)

    @torch.inference_mode()
    def candidates(self, frame: PreparedFrame) -> Detections:
        """All network candidates of a frame, decoded, without any selection (for inspection/training)."""
        output = self.detection_module(frame.image, frame.K_crop).float()
        index = torch.arange(output.conf.shape[1], device=output.conf.device)
        with _full_precision(self.device):
            return decode_candidates(output, index, self.mean_pose, self.body, frame.K)

    @torch.inference_mode()
    def update(
        self,
        features: FrameFeatures,
        betas: torch.Tensor,
        pose: torch.Tensor,
        trans: torch.Tensor,
        keypoints_3d: torch.Tensor,
        hidden: torch.Tensor,
    ) -> UpdatedTracks:
        """Move N tracks to the frame of ``features`` (all N attend to each other).

        Args:
            betas ``(N, 10)`` (never changed), pose ``(N, 72)``, trans ``(N, 3)``,
            keypoints_3d ``(N, 27, 3)``, hidden ``(N, H)``: the tracks' current state.
        """
        num_tracks = betas.shape[0]
        if num_tracks == 0:
            return UpdatedTracks(
                pose=pose.new_zeros(0, 72),
                trans=trans.new_zeros(0, 3),
                keypoints_3d=keypoints_3d.new_zeros(0, 27, 3),
                keypoints_2d=keypoints_3d.new_zeros(0, 27, 2),
                hidden=hidden.new_zeros(0, self.config.update.hidden_dim),
            )
        if features.keys_values is None:
            features.keys_values = self.update_module.image_keys_values(features.image_features)
        raw = self.update_module(
            features.image_features,
            features.K_crop,
            betas[None],
            pose[None],
            trans[None],
            keypoints_3d[None],
            hidden[None],
            keys_values=features.keys_values,
        )
        with _full_precision(self.device):
            delta = torch.cat([raw.delta_root_orient[0], raw.delta_body_pose[0]], dim=-1).float()
            new_pose = apply_pose_delta(self.mean_pose, delta)
            new_trans = raw.trans[0].float()
            keypoints = self.body.keypoints(betas, new_pose, new_trans)
            return UpdatedTracks(
                pose=new_pose,
                trans=new_trans,
                keypoints_3d=keypoints,
                keypoints_2d=project_points(keypoints, features.K),
                hidden=raw.hidden[0].float(),
            )

    def tracker(self, config=None, **overrides):
        """A :class:`comotion.tracking.Tracker` running this model.

        ``config=None`` starts from :meth:`tracker_config`; ``overrides`` replace config fields.
        """
        from comotion.tracking.tracker import Tracker

        config = self.tracker_config() if config is None else config
        if overrides:
            config = dataclasses.replace(config, **overrides)
        return Tracker(self, config)

    def tracker_config(self, fixed_quirks: bool = False):
        """The reference :class:`~comotion.tracking.TrackerConfig` (or its fixed-quirks variant)
        with the settings stored with these weights applied (none for the official weights)."""
        from comotion.tracking.config import TrackerConfig

        if fixed_quirks:
            return TrackerConfig.fixed(**self.tracker_settings)
        return TrackerConfig(**self.tracker_settings)


def _full_precision(device: torch.device):
    """Body model and geometry stay float32 even when the networks run under autocast."""
    return torch.autocast(device_type=device.type, enabled=False)


class _NetworkState(nn.Module):
    """State-dict view ``detection_module.* / update_module.* / mean_pose`` sharing the model's tensors."""

    def __init__(self, model: CoMotion) -> None:
        super().__init__()
        self.detection_module = model.detection_module
        self.update_module = model.update_module
        self.register_buffer("mean_pose", model.mean_pose)
