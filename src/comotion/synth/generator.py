"""Render random scenes into clips with ground truth: the core of ``comotion synth``.

:class:`ClipGenerator` holds the body model and per-mesh tables (faces, clothing regions,
pattern coordinates); :meth:`ClipGenerator.generate` turns a seed into frames and a
:class:`~comotion.synth.clip.ClipGroundTruth`.  Clip ``k`` of a run with seed ``s`` uses the
generator ``numpy.random.default_rng([s, k])``, so results do not depend on the number of
worker processes or on which clips are generated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from comotion.body import BodyOutput
from comotion.errors import InputError
from comotion.geometry.camera import points_in_image, project_points
from comotion.io.posetrack import COCO_FROM_KEYPOINTS27
from comotion.synth.appearance import PatternTable, apply_effects, render_background
from comotion.synth.clip import GENERATOR_VERSION, ClipGroundTruth
from comotion.synth.raster import rasterize, vertex_normals
from comotion.synth.scene import (
    REGIONS,
    Scene,
    SceneConfig,
    clothing_regions,
    person_regions,
    sample_scene,
)

OCCLUDER_OWNER = -2  # owner value of occluder pixels in RenderedFrame.owner


@dataclass
class SynthConfig:
    """A synthetic data run.

    Attributes:
        scene: what scenes contain (image size, frames per clip, people, camera ranges, ...).
        single_image: every frame is an independent scene (stage-1 data); person slots are
            not linked across frames.
        frame_chunk: frames posed per body-model call (bounds memory).
        cull_backfaces: skip triangles facing away from the camera (same image for closed
            meshes, a third faster).
    """

    scene: SceneConfig = field(default_factory=SceneConfig)
    single_image: bool = False
    frame_chunk: int = 16
    cull_backfaces: bool = True


@dataclass
class GeneratedClip:
    """Output of :meth:`ClipGenerator.generate`: frames, ground truth, metadata, and (on request)
    the per-frame depth and owner buffers."""

    frames: list[np.ndarray]
    gt: ClipGroundTruth
    meta: dict
    depth: list[np.ndarray] | None = None
    owner: list[np.ndarray] | None = None


@dataclass
class _SceneMeshes:
    """Everything of a scene that is fixed over its frames, people first, then occluders.

    Attributes:
        faces: ``(F, 3)`` indices into the concatenated vertices (people, then occluders).
        owner: ``(F,)`` person slot, or ``num_people + j`` for occluder ``j``.
        material: ``(V_all,)`` row of ``patterns`` of every vertex (a pixel takes the material
            of its triangle's vertex with the largest barycentric weight).
        uv: ``(V_all, 2)`` pattern coordinates per vertex (rest pose for people, world for boxes).
        occluder_vertices, occluder_normals: ``(36 * num_occluders, 3)`` world frame (3 unshared
            vertices per box triangle).
        patterns: all materials, or ``None`` for an empty scene.
    """

    faces: torch.Tensor
    owner: torch.Tensor
    material: torch.Tensor
    uv: torch.Tensor
    occluder_vertices: torch.Tensor
    occluder_normals: torch.Tensor
    patterns: PatternTable | None


class ClipGenerator:
    """Generates clips for one body model.

    Args:
        body: a :class:`~comotion.body.BodyModel` with faces.
        config: the run's configuration.
    """

    def __init__(self, body, config: SynthConfig) -> None:
        if body.faces.numel() == 0:
            raise InputError(f"body model '{body.name}' has no faces (triangles) and cannot be rendered")
        self.body = body.float().eval()
        self.config = config
        with torch.no_grad():
            rest = body(torch.zeros(1, 10), torch.zeros(1, 72), vertices="all")
        rest_vertices = rest.vertices[0]
        # Back-face culling needs outward faces: counter-clockwise seen from outside, i.e. a
        # positive signed volume.  Flip meshes wound the other way.
        faces = body.faces.long()
        corners = rest_vertices[faces]
        signed_volume = (corners[:, 0] * torch.cross(corners[:, 1], corners[:, 2], dim=-1)).sum()
        self.faces = faces if signed_volume >= 0 else faces[:, [0, 2, 1]]
        self.regions = clothing_regions(body.weights, rest_vertices, rest.joints[0])
        # Clothing patterns live on the rest-pose surface: around the body and up it.
        self.pattern_uv = torch.stack([rest_vertices[:, 0] + 0.7 * rest_vertices[:, 2], rest_vertices[:, 1]], dim=1)

    def generate(self, seed: int | list[int], keep_buffers: bool = False) -> GeneratedClip:
        """Render one clip from ``seed`` (an int or a list of ints for ``default_rng``).

        Runs with one torch thread: the tensors are small, and extra threads only contend
        (several times slower on a busy machine); run clips in parallel processes instead.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._generate(seed, keep_buffers)
        finally:
            torch.set_num_threads(threads)

    def _generate(self, seed: int | list[int], keep_buffers: bool) -> GeneratedClip:
        rng = np.random.default_rng(seed)
        scene_config = self.config.scene
        if not self.config.single_image:
            scene = sample_scene(rng, scene_config, self.body)
            parts = [self._render_scene(scene, rng, keep_buffers)]
        else:
            one_frame = replace(scene_config, num_frames=1)
            parts = [self._render_scene(sample_scene(rng, one_frame, self.body), rng, keep_buffers) for _ in range(scene_config.num_frames)]
        clip = _concatenate_frames(parts) if len(parts) > 1 else parts[0]
        clip.meta.update(
            {
                "seed": seed if isinstance(seed, int) else [int(s) for s in seed],
                "fps": scene_config.motion.fps,
                "K": clip.gt.K[0].tolist(),
                "body_model": self.body.name,
                "generator_version": GENERATOR_VERSION,
                "independent_frames": self.config.single_image,
            }
        )
        return clip

    def _render_scene(self, scene: Scene, rng: np.random.Generator, keep_buffers: bool) -> GeneratedClip:
        height, width = self.config.scene.height, self.config.scene.width
        num_frames = len(scene.camera.rotation)
        num_people = len(scene.people)
        K = torch.as_tensor(scene.camera.K, dtype=torch.float32)
        betas = torch.as_tensor(np.stack([p.betas for p in scene.people]) if num_people else np.zeros((0, 10)), dtype=torch.float32)
        pose = torch.as_tensor(np.stack([p.pose for p in scene.people], 1) if num_people else np.zeros((num_frames, 0, 72)), dtype=torch.float32)
        trans = torch.as_tensor(np.stack([p.trans for p in scene.people], 1) if num_people else np.zeros((num_frames, 0, 3)), dtype=torch.float32)

        meshes = self._scene_meshes(scene)
        static_camera = np.allclose(scene.camera.rotation, scene.camera.rotation[:1])
        background = None
        frames, depths, owners = [], [], []
        gt = _empty_ground_truth(num_frames, num_people)
        light_world = torch.as_tensor(scene.light_direction, dtype=torch.float32)
        for start in range(0, num_frames, self.config.frame_chunk):
            stop = min(start + self.config.frame_chunk, num_frames)
            out = self._pose_people(betas, pose[start:stop], trans[start:stop])
            for t in range(start, stop):
                rotation = torch.as_tensor(scene.camera.rotation[t], dtype=torch.float32)
                translation = torch.as_tensor(scene.camera.translation[t], dtype=torch.float32)
                people_vertices = out.vertices[t - start]  # (P, V, 3)
                normals = vertex_normals(people_vertices, self.faces) if num_people else people_vertices
                vertices = torch.cat([people_vertices.reshape(-1, 3), meshes.occluder_vertices @ rotation.T + translation])
                all_normals = torch.cat([normals.reshape(-1, 3), meshes.occluder_normals @ rotation.T])
                raster = rasterize(
                    vertices, meshes.faces, meshes.owner, K, height, width, num_people + len(scene.occluders), self.config.cull_backfaces
                )
                if background is None or not static_camera:
                    background = render_background(
                        scene.background, K, torch.as_tensor(scene.camera.rotation[t]), torch.as_tensor(scene.camera.position[t]), height, width
                    )
                image = background.clone()
                covered = raster.face >= 0
                if covered.any():
                    image[covered] = self._shade(raster, covered, meshes, all_normals, K, rotation @ light_world, scene.ambient)
                frames.append(apply_effects(image.numpy(), scene.effects, t, rng))
                owner = raster.owner.clone()
                owner[owner >= num_people] = OCCLUDER_OWNER
                _fill_frame_ground_truth(gt, t, out, t - start, K, raster, owner, num_people, height, width)
                if keep_buffers:
                    depths.append(raster.depth.numpy())
                    owners.append(owner.numpy())

        gt.betas[:] = betas.numpy()[None]
        gt.pose[:] = pose.numpy()
        gt.trans[:] = trans.numpy()
        gt.K[:] = scene.camera.K
        gt.camera_rotation[:] = scene.camera.rotation
        gt.camera_translation[:] = scene.camera.translation
        meta = {"camera_height": scene.camera.height, "camera_pitch_deg": float(np.rad2deg(scene.camera.pitch)), "num_occluders": len(scene.occluders)}
        return GeneratedClip(frames, gt, meta, depths if keep_buffers else None, owners if keep_buffers else None)

    def _pose_people(self, betas: torch.Tensor, pose: torch.Tensor, trans: torch.Tensor) -> BodyOutput:
        """Body output for ``pose (T, P, 72)``, ``trans (T, P, 3)``, ``betas (P, 10)``, with
        ``coco`` always set (the nearest CoMotion keypoints for models without a COCO regressor)."""
        frames, people = pose.shape[:2]
        if people == 0:
            empty = torch.zeros(frames, 0, 1, 3)
            return BodyOutput(joints=empty, keypoints=empty, coco=empty, vertices=torch.zeros(frames, 0, self.body.num_vertices, 3))
        with torch.no_grad():
            out = self.body(betas.expand(frames, people, 10), pose, trans, coco=self.body.has_coco, vertices="all")
        if out.coco is None:
            out.coco = out.keypoints[..., list(COCO_FROM_KEYPOINTS27), :]
        return out

    def _scene_meshes(self, scene: Scene) -> _SceneMeshes:
        num_people = len(scene.people)
        num_vertices = self.body.num_vertices
        # Materials: person k uses patterns k*R .. k*R+R-1 (R clothing regions), occluders follow.
        patterns = [pattern for person in scene.people for pattern in person.appearance.patterns]
        faces, owner, material = [], [], []
        for k, person in enumerate(scene.people):
            vertex_material = torch.as_tensor(person_regions(self.regions, self.body.weights, person.appearance.bare) + k * len(REGIONS))
            faces.append(self.faces + k * num_vertices)
            owner.append(torch.full((len(self.faces),), k, dtype=torch.long))
            material.append(vertex_material.long())
        uv = [self.pattern_uv.repeat(num_people, 1)]
        occluder_vertices = []
        for j, occluder in enumerate(scene.occluders):
            world, box_faces = occluder.mesh()
            corners = torch.as_tensor(world[box_faces].reshape(-1, 3), dtype=torch.float32)  # unshared: flat-shaded
            faces.append(torch.arange(len(corners)).reshape(-1, 3) + num_people * num_vertices + sum(len(v) for v in occluder_vertices))
            owner.append(torch.full((len(box_faces),), num_people + j, dtype=torch.long))
            material.append(torch.full((len(corners),), len(patterns), dtype=torch.long))
            uv.append(torch.stack([corners[:, 0] + corners[:, 2], corners[:, 1]], dim=1))
            occluder_vertices.append(corners)
            patterns.append(occluder.pattern)
        occluder_world = torch.cat(occluder_vertices) if occluder_vertices else torch.zeros(0, 3)
        occluder_normals = vertex_normals(occluder_world, torch.arange(len(occluder_world)).reshape(-1, 3))
        empty = torch.zeros(0, dtype=torch.long)
        return _SceneMeshes(
            faces=torch.cat(faces) if faces else empty.reshape(0, 3),
            owner=torch.cat(owner) if owner else empty,
            material=torch.cat(material) if material else empty,
            uv=torch.cat(uv),
            occluder_vertices=occluder_world,
            occluder_normals=occluder_normals,
            patterns=PatternTable.from_patterns(patterns) if patterns else None,
        )

    @staticmethod
    def _shade(raster, covered, meshes: _SceneMeshes, normals, K, light, ambient) -> torch.Tensor:
        """Lambert-shaded albedo ``(N, 3)`` of the covered pixels."""
        face = raster.face[covered]
        bary = raster.barycentric[covered][..., None]  # (N, 3, 1)
        corner = meshes.faces[face]  # (N, 3)
        normal = (normals[corner] * bary).sum(dim=1)
        normal = normal / normal.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        rows, cols = torch.nonzero(covered, as_tuple=True)
        ray = torch.stack([(cols + 0.5 - K[0, 2]) / K[0, 0], (rows + 0.5 - K[1, 2]) / K[1, 1], torch.ones_like(rows, dtype=torch.float32)], dim=1)
        # Light both sides of open surfaces: turn normals towards the camera.
        normal = torch.where(((normal * ray).sum(dim=1) > 0)[:, None], -normal, normal)
        coords = (meshes.uv[corner] * bary).sum(dim=1)
        nearest = corner.gather(1, bary[..., 0].argmax(dim=1, keepdim=True))[:, 0]
        albedo = meshes.patterns.evaluate(meshes.material[nearest], coords[:, 0], coords[:, 1])
        diffuse = (-(normal @ light)).clamp(min=0.0)
        return albedo * (ambient + (1.0 - ambient) * diffuse)[:, None]


def _empty_ground_truth(num_frames: int, num_people: int) -> ClipGroundTruth:
    T, P = num_frames, num_people
    nan_boxes = np.full((T, P, 4), np.nan, np.float32)
    return ClipGroundTruth(
        ids=np.arange(1, P + 1, dtype=np.int32),
        present=np.zeros((P, T), bool),
        betas=np.zeros((T, P, 10), np.float32),
        pose=np.zeros((T, P, 72), np.float32),
        trans=np.zeros((T, P, 3), np.float32),
        keypoints_3d=np.zeros((T, P, 27, 3), np.float32),
        keypoints_2d=np.zeros((T, P, 27, 2), np.float32),
        keypoints_visible=np.zeros((T, P, 27), bool),
        coco_3d=np.zeros((T, P, 17, 3), np.float32),
        coco_2d=np.zeros((T, P, 17, 2), np.float32),
        coco_visible=np.zeros((T, P, 17), bool),
        truncation=np.zeros((T, P), np.float32),
        visible_pixels=np.zeros((T, P), np.int32),
        visible_fraction=np.zeros((T, P), np.float32),
        box=nan_boxes,
        box_visible=nan_boxes.copy(),
        K=np.zeros((T, 2, 3), np.float32),
        camera_rotation=np.zeros((T, 3, 3), np.float32),
        camera_translation=np.zeros((T, 3), np.float32),
    )


def keypoint_visibility(
    points: torch.Tensor, uv: torch.Tensor, person: torch.Tensor, depth: torch.Tensor, owner: torch.Tensor
) -> torch.Tensor:
    """Bool ``(..., J)``: keypoints inside the image whose pixel shows their own person or a
    surface farther than the keypoint (nothing else in front).

    Args:
        points: ``(..., J, 3)`` camera frame; ``uv``: ``(..., J, 2)`` their projections.
        person: ``(...)`` person slot of each keypoint set.
        depth, owner: ``(H, W)`` depth and owner buffers.
    """
    height, width = depth.shape
    inside = points_in_image(uv, height, width) & (points[..., 2] > 0)
    col = uv[..., 0].floor().long().clamp(0, width - 1)
    row = uv[..., 1].floor().long().clamp(0, height - 1)
    own = owner[row, col] == person[..., None]
    behind = depth[row, col] > points[..., 2]
    return inside & (own | behind)


def _fill_frame_ground_truth(gt, t, out, local, K, raster, owner, num_people, height, width) -> None:
    if num_people == 0:
        return
    person = torch.arange(num_people)
    keypoints = out.keypoints[local]
    coco = out.coco[local]
    # Projections in float64 from the stored float32 points, so that the stored 2D equals the
    # projection of the stored 3D to float32 precision.
    K64 = K.double()
    kp_2d = project_points(keypoints.double(), K64)
    coco_2d = project_points(coco.double(), K64)
    gt.keypoints_3d[t], gt.keypoints_2d[t] = keypoints.numpy(), kp_2d.float().numpy()
    gt.coco_3d[t], gt.coco_2d[t] = coco.numpy(), coco_2d.float().numpy()
    gt.keypoints_visible[t] = keypoint_visibility(keypoints, kp_2d, person, raster.depth, owner).numpy()
    gt.coco_visible[t] = keypoint_visibility(coco, coco_2d, person, raster.depth, owner).numpy()

    vertices = out.vertices[local]  # (P, V, 3)
    vertex_uv = project_points(vertices, K)
    in_view = points_in_image(vertex_uv, height, width) & (vertices[..., 2] > 0)
    gt.truncation[t] = 1.0 - in_view.float().mean(dim=1).numpy()
    coverage = raster.coverage[:num_people]
    present = coverage > 0
    gt.present[:, t] = present.numpy()
    lo = vertex_uv.amin(dim=1).clamp(min=0)
    hi = torch.minimum(vertex_uv.amax(dim=1), torch.tensor([float(width), float(height)]))
    box = torch.cat([lo, hi], dim=1)
    gt.box[t] = torch.where(present[:, None], box, torch.full_like(box, float("nan"))).numpy()

    flat_owner = owner.reshape(-1)
    visible = flat_owner >= 0
    pixel_owner = flat_owner[visible]
    pixel = torch.nonzero(visible, as_tuple=True)[0]
    rows, cols = (pixel // width).float(), (pixel % width).float()
    counts = torch.bincount(pixel_owner, minlength=num_people)
    gt.visible_pixels[t] = counts.numpy()
    gt.visible_fraction[t] = (counts / coverage.clamp(min=1)).numpy()
    inf = torch.full((num_people,), float("inf"))
    x1 = inf.clone().scatter_reduce_(0, pixel_owner, cols, "amin")
    y1 = inf.clone().scatter_reduce_(0, pixel_owner, rows, "amin")
    x2 = (-inf).scatter_reduce_(0, pixel_owner, cols + 1, "amax")
    y2 = (-inf).scatter_reduce_(0, pixel_owner, rows + 1, "amax")
    box_visible = torch.stack([x1, y1, x2, y2], dim=1)
    gt.box_visible[t] = torch.where((counts > 0)[:, None], box_visible, torch.full_like(box_visible, float("nan"))).numpy()


def _concatenate_frames(parts: list[GeneratedClip]) -> GeneratedClip:
    """Independent one-frame scenes -> one clip, person slots padded to the largest count."""
    num_persons = max(p.gt.num_persons for p in parts)
    merged = _empty_ground_truth(len(parts), num_persons)
    for t, part in enumerate(parts):
        n = part.gt.num_persons
        for name, array in part.gt.to_arrays().items():
            target = getattr(merged, name)
            if name == "ids":
                continue
            if name == "present":
                target[:n, t] = array[:, 0]
            elif name in ("K", "camera_rotation", "camera_translation"):
                target[t] = array[0]
            else:
                target[t, :n] = array[0]
    meta = {key: [p.meta[key] for p in parts] for key in parts[0].meta}
    depth = [d for p in parts for d in p.depth] if parts[0].depth is not None else None
    owner = [o for p in parts for o in p.owner] if parts[0].owner is not None else None
    return GeneratedClip([f for p in parts for f in p.frames], merged, meta, depth, owner)
