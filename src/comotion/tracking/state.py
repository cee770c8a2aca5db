"""Batched track state: N tracks as tensors with a leading track axis, no per-track objects.

A :class:`TrackState` carries what the network needs to move tracks to the next frame (SMPL
parameters, keypoints, hidden state) plus the health bookkeeping of spec section 7.6 (age,
moving averages, root-velocity history).  Row order is creation order, so ids grow along it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass
class TrackState:
    """N tracks (first axis of every field).

    Attributes:
        betas: ``(N, 10)`` body shape.
        pose: ``(N, 72)`` axis-angle pose, radians, root first.
        trans: ``(N, 3)`` root translation, camera frame, metres.
        keypoints_3d: ``(N, 27, 3)`` 22 joints + 5 face points, camera frame, metres.
        keypoints_2d: ``(N, 27, 2)`` their projections, original-image pixels.
        hidden: ``(N, H)`` recurrent state of the update network (zeros for a fresh detection).
        ids: ``(N,)`` long track ids (from 1; 0 for candidates not yet accepted).
        age: ``(N,)`` long, number of frames the track has been health-checked in.
        match: ``(N,)`` float64 latest raw match score (similarity to the best detection).
        match_ema: ``(N,)`` float64 moving average of ``match``.
        inbounds_ema: ``(N,)`` float64 moving average of the fraction of keypoints inside the image.
        overlap_ema: ``(N,)`` float64 moving average of the best similarity to another track.
        last_trans: ``(N, 3)`` translation logged at the previous health check.
        velocity: ``(N, W)`` float64 ring buffer of root speeds, metres per frame; the speed of
            health check number ``age`` sits in column ``(age - 1) % W`` (unwritten columns are 0).
    """

    betas: torch.Tensor
    pose: torch.Tensor
    trans: torch.Tensor
    keypoints_3d: torch.Tensor
    keypoints_2d: torch.Tensor
    hidden: torch.Tensor
    ids: torch.Tensor
    age: torch.Tensor
    match: torch.Tensor
    match_ema: torch.Tensor
    inbounds_ema: torch.Tensor
    overlap_ema: torch.Tensor
    last_trans: torch.Tensor
    velocity: torch.Tensor

    @classmethod
    def from_people(
        cls,
        betas: torch.Tensor,
        pose: torch.Tensor,
        trans: torch.Tensor,
        keypoints_3d: torch.Tensor,
        keypoints_2d: torch.Tensor,
        hidden_dim: int,
        window: int,
    ) -> TrackState:
        """Fresh tracks (id 0, no history, zero hidden state) from people ``(N, ...)``."""
        num = betas.shape[0]
        device = betas.device
        zeros64 = torch.zeros(num, dtype=torch.float64, device=device)
        return cls(
            betas=betas,
            pose=pose,
            trans=trans,
            keypoints_3d=keypoints_3d,
            keypoints_2d=keypoints_2d,
            hidden=torch.zeros(num, hidden_dim, dtype=pose.dtype, device=device),
            ids=torch.zeros(num, dtype=torch.long, device=device),
            age=torch.zeros(num, dtype=torch.long, device=device),
            match=zeros64,
            match_ema=zeros64.clone(),
            inbounds_ema=zeros64.clone(),
            overlap_ema=zeros64.clone(),
            last_trans=trans.clone(),
            velocity=torch.zeros(num, window, dtype=torch.float64, device=device),
        )

    @classmethod
    def empty(cls, hidden_dim: int, window: int, device=None, dtype: torch.dtype = torch.float32) -> TrackState:
        """No tracks."""

        def z(*shape):
            return torch.zeros(0, *shape, dtype=dtype, device=device)

        return cls.from_people(z(10), z(72), z(3), z(27, 3), z(27, 2), hidden_dim, window)

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def confidence(self) -> torch.Tensor:
        """``(N,)`` float32 moving-average match score in [0, 1] (what results files call confidence)."""
        return self.match_ema.to(torch.float32)

    def select(self, index: torch.Tensor) -> TrackState:
        """Tracks at ``index``: long indices (in that order) or a bool mask (order kept)."""
        return TrackState(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    def replace(self, **fields: torch.Tensor) -> TrackState:
        """A copy with some fields replaced (same N)."""
        return dataclasses.replace(self, **fields)

    @staticmethod
    def cat(states: list[TrackState]) -> TrackState:
        """Tracks of ``states`` one after the other."""
        return TrackState(
            **{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in dataclasses.fields(TrackState)}
        )

    def to(self, device) -> TrackState:
        return TrackState(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})
