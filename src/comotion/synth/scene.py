"""Random scenes: camera, people (shape, motion, clothing), occluders, background, lighting.

World frame: y up, ground plane y = 0, the camera stands at ``(0, camera_height, 0)`` and, at
zero pan, looks along world -z.  People are placed at ground depths where the camera sees them;
some cross the field of view (entering or leaving during the clip), others move about inside
it.  Everything is drawn from one ``numpy.random.Generator``, so a seed fixes the whole scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from comotion.geometry.rotations import matrix_to_axis_angle
from comotion.synth.appearance import (
    Background,
    ImageEffects,
    Pattern,
    random_background,
    random_colour,
    random_effects,
    random_pattern,
)
from comotion.synth.motion import (
    MotionConfig,
    PersonMotion,
    body_pose_from_euler,
    euler_to_matrix,
    rotation_y,
    sample_motion,
)

# Clothing regions of the body surface, chosen per vertex from its dominant skinning joint.
REGIONS = ("skin", "hair", "upper", "lower", "shoes")
_UPPER_JOINTS = (3, 6, 9, 13, 14, 16, 17)
_LOWER_JOINTS = (0, 1, 2)
_SHOE_JOINTS = (7, 8, 10, 11)
_SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.55], [0.78, 0.57, 0.44], [0.55, 0.38, 0.26], [0.36, 0.22, 0.13]])


@dataclass
class SceneConfig:
    """What a random scene may contain.

    Attributes:
        height, width: image size in pixels.
        num_frames: frames per clip (1 in single-image mode).
        people: (min, max) number of people.
        vertical_fov_deg: (min, max) vertical field of view in degrees.
        camera_height: (min, max) camera height above the ground, metres.
        camera_pitch_deg: (min, max) downward tilt of the camera in degrees.
        pan_probability: chance that the camera pans slowly during a clip.
        depth: (min, max) ground distance of people from the camera, metres.
        crossing_probability: chance that a person crosses the view (enters or leaves).
        occluders: (min, max) number of foreground boxes/pillars.
        motion: the motion sampler's parameters (its ``fps`` is the clip's frame rate).
    """

    height: int = 256
    width: int = 256
    num_frames: int = 64
    people: tuple[int, int] = (3, 6)
    vertical_fov_deg: tuple[float, float] = (40.0, 75.0)
    camera_height: tuple[float, float] = (0.8, 2.6)
    camera_pitch_deg: tuple[float, float] = (-3.0, 20.0)
    pan_probability: float = 0.3
    depth: tuple[float, float] = (2.5, 11.0)
    crossing_probability: float = 0.5
    occluders: tuple[int, int] = (0, 2)
    motion: MotionConfig = field(default_factory=MotionConfig)


@dataclass
class Camera:
    """A pinhole camera per frame.

    Attributes:
        K: ``(2, 3)`` intrinsics, pixels.
        rotation: ``(T, 3, 3)`` world-to-camera rotations (``x_cam = R x_world + t``).
        translation: ``(T, 3)`` world-to-camera translations, metres.
        position: ``(T, 3)`` camera centres in the world.
        height, pitch: camera height (m) and downward tilt (radians).
    """

    K: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    position: np.ndarray
    height: float
    pitch: float


@dataclass
class Appearance:
    """One person's look.

    Attributes:
        patterns: one pattern per clothing region (:data:`REGIONS`).
        bare: which optional garments are left out (``forearms``: short sleeves, ``shins``:
            shorts, ``head``: no hair), drawn as skin.
    """

    patterns: list[Pattern]
    bare: dict[str, bool]


@dataclass
class Occluder:
    """An axis-aligned box standing on the ground (a crate, a pillar).

    Attributes:
        centre_xz: ground position of its centre, metres.
        size: (width x, height y, depth z) metres.
        yaw: rotation about the vertical, radians.
        pattern: surface texture (coordinates: world x + z, world y).
    """

    centre_xz: np.ndarray
    size: np.ndarray
    yaw: float
    pattern: Pattern

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """World vertices ``(8, 3)`` and outward counter-clockwise faces ``(12, 3)``."""
        corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (0.0, 1.0) for z in (-0.5, 0.5)]) * self.size
        world = corners @ rotation_y(np.float64(self.yaw)).T + np.array([self.centre_xz[0], 0.0, self.centre_xz[1]])
        faces = np.array(
            [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
             [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
        )  # fmt: skip
        return world, faces


@dataclass
class Person:
    """One person: shape, look, motion and the resulting SMPL parameters in the camera frame.

    Attributes:
        betas: ``(10,)`` shape.
        appearance: clothing.
        motion: the sampled world-frame motion.
        pose: ``(T, 72)`` axis-angle pose, root orientation in the camera frame.
        trans: ``(T, 3)`` SMPL translation in the camera frame, metres.
    """

    betas: np.ndarray
    appearance: Appearance
    motion: PersonMotion
    pose: np.ndarray
    trans: np.ndarray


@dataclass
class Scene:
    """Everything needed to render one clip."""

    camera: Camera
    people: list[Person]
    occluders: list[Occluder]
    background: Background
    light_direction: np.ndarray  # (3,) world, unit, pointing from the light towards the scene
    ambient: float
    effects: ImageEffects


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def sample_camera(rng: np.random.Generator, config: SceneConfig) -> Camera:
    """Random intrinsics, height and tilt; a slow sinusoidal pan for some clips."""
    fov = np.deg2rad(rng.uniform(*config.vertical_fov_deg))
    focal = config.height / 2.0 / np.tan(fov / 2.0)
    centre = np.array([config.width, config.height]) / 2.0 + rng.normal(0.0, 0.02, 2) * np.array([config.width, config.height])
    K = np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]]])
    height = rng.uniform(*config.camera_height)
    pitch = np.deg2rad(rng.uniform(*config.camera_pitch_deg))
    t = np.arange(config.num_frames) / config.motion.fps
    yaw = np.zeros(config.num_frames)
    if config.num_frames > 1 and rng.random() < config.pan_probability:
        yaw = np.deg2rad(rng.uniform(3.0, 10.0)) * np.sin(2 * np.pi * t / rng.uniform(4.0, 12.0) + rng.uniform(0, 2 * np.pi))
    # Camera-to-world: pan about world y, tilt down about world x, then the OpenCV flip
    # (camera y down, z forward) of a camera that looks along world -z.
    flip = np.diag([1.0, -1.0, -1.0])
    cam_to_world = rotation_y(yaw) @ _rotation_x(-pitch) @ flip
    rotation = np.swapaxes(cam_to_world, -1, -2)
    position = np.tile([0.0, height, 0.0], (config.num_frames, 1))
    translation = -np.einsum("tij,tj->ti", rotation, position)
    return Camera(K=K, rotation=rotation, translation=translation, position=position, height=float(height), pitch=float(pitch))


def clothing_regions(weights: torch.Tensor, rest_vertices: torch.Tensor, rest_joints: torch.Tensor) -> np.ndarray:
    """Region number ``(V,)`` (index into :data:`REGIONS`) of every vertex of a body mesh."""
    joint = weights.argmax(dim=1).numpy()
    region = np.full(len(joint), REGIONS.index("skin"))
    region[np.isin(joint, _UPPER_JOINTS)] = REGIONS.index("upper")
    region[np.isin(joint, _LOWER_JOINTS)] = REGIONS.index("lower")
    region[np.isin(joint, _SHOE_JOINTS)] = REGIONS.index("shoes")
    region[np.isin(joint, (4, 5))] = REGIONS.index("lower")
    region[np.isin(joint, (18, 19))] = REGIONS.index("upper")
    head = rest_joints[15].numpy()
    rel = rest_vertices.numpy() - head
    hair = (joint == 15) & ((rel[:, 1] > 0.04) | ((rel[:, 2] < -0.02) & (rel[:, 1] > -0.04)))
    region[hair] = REGIONS.index("hair")
    return region


def sample_appearance(rng: np.random.Generator) -> Appearance:
    skin = np.clip(_SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.9, 1.1), 0, 1)
    skin_pattern = Pattern("plain", skin, skin, 1.0, 0.0, np.zeros((16, 16)))
    hair_colour = random_colour(rng, saturation=(0.2, 0.7), value=(0.05, 0.6))
    hair = Pattern("noise", hair_colour, hair_colour * 0.6, 0.03, 0.0, rng.random((16, 16)))
    upper = random_pattern(rng, scale=(0.03, 0.3))
    lower = random_pattern(rng, scale=(0.03, 0.3), kinds=("plain", "plain", "stripes", "checker", "noise"))
    shoes = Pattern("plain", random_colour(rng, value=(0.05, 0.7)), skin, 1.0, 0.0, np.zeros((16, 16)))
    bare = {"forearms": rng.random() < 0.35, "shins": rng.random() < 0.25, "head": rng.random() < 0.1}
    return Appearance(patterns=[skin_pattern, hair, upper, lower, shoes], bare=bare)


def person_regions(base_regions: np.ndarray, weights: torch.Tensor, bare: dict[str, bool]) -> np.ndarray:
    """Per-vertex regions of one person: the body's regions with bare skin where chosen."""
    joint = weights.argmax(dim=1).numpy()
    regions = base_regions.copy()
    if bare["forearms"]:
        regions[np.isin(joint, (18, 19))] = REGIONS.index("skin")
    if bare["shins"]:
        regions[np.isin(joint, (4, 5))] = REGIONS.index("skin")
    if bare["head"]:
        regions[regions == REGIONS.index("hair")] = REGIONS.index("skin")
    return regions


def sample_occluders(rng: np.random.Generator, config: SceneConfig, half_tan: float) -> list[Occluder]:
    """Boxes and pillars in the field of view (``half_tan``: tan of half the horizontal FOV)."""
    occluders = []
    for _ in range(int(rng.integers(config.occluders[0], config.occluders[1] + 1))):
        depth = rng.uniform(1.8, 6.0)
        pillar = rng.random() < 0.4
        size = np.array([rng.uniform(0.15, 0.5), rng.uniform(3.5, 6.0), rng.uniform(0.15, 0.5)]) if pillar else np.array(
            [rng.uniform(0.4, 1.6), rng.uniform(0.4, 1.3), rng.uniform(0.3, 1.0)]
        )
        x = rng.uniform(-0.9, 0.9) * depth * half_tan
        occluders.append(Occluder(np.array([x, -depth]), size, float(rng.uniform(-0.5, 0.5)), random_pattern(rng, scale=(0.1, 0.6))))
    return occluders


def _path_collides(path: np.ndarray, others: list[np.ndarray], occluders: list[Occluder], min_distance: float = 0.6) -> bool:
    """Whether ground path ``(T, 2)`` comes within ``min_distance`` of another person at the
    same frame, or walks through an occluder (its footprint as a circle plus 0.3 m)."""
    if any(np.linalg.norm(path - other, axis=1).min() < min_distance for other in others):
        return True
    return any(
        np.linalg.norm(path - occluder.centre_xz, axis=1).min() < 0.5 * np.hypot(occluder.size[0], occluder.size[2]) + 0.3
        for occluder in occluders
    )


def sample_motions(
    rng: np.random.Generator, config: SceneConfig, num_people: int, half_tan: float, occluders: list[Occluder]
) -> list[PersonMotion]:
    """Motions whose ground paths keep people apart and out of the occluders (up to 10 tries
    per person); crossers enter or leave the view."""
    motions: list[PersonMotion] = []
    frames = config.num_frames
    for _ in range(num_people):
        for attempt in range(10):
            depth = rng.uniform(*config.depth)
            crossing = frames > 1 and rng.random() < config.crossing_probability
            if crossing:
                direction = rng.choice([-1.0, 1.0])
                heading = direction * np.pi / 2 + rng.normal(0.0, 0.3)
                motion = sample_motion(rng, frames, config.motion, (0.0, 0.0), heading, locomotion_only=True, turn_scale=0.2)
                # Put the person on the image border at a random frame, walking in or out.
                at = int(rng.integers(0, frames))
                entering = rng.random() < 0.5
                border = (depth * half_tan + 0.4) * (-direction if entering else direction)
                shift = np.array([border, -depth]) - motion.ground_xz[at]
            else:
                motion = sample_motion(rng, frames, config.motion, (0.0, 0.0), rng.uniform(-np.pi, np.pi))
                target = np.array([rng.uniform(-1.0, 1.0) * depth * half_tan, -depth])
                shift = target - motion.ground_xz.mean(axis=0)
            motion.ground_xz = motion.ground_xz + shift
            if not _path_collides(motion.ground_xz, [m.ground_xz for m in motions], occluders) or attempt == 9:
                break
        motions.append(motion)
    return motions


def standing_clearance(body, betas: torch.Tensor) -> torch.Tensor:
    """Height ``(P,)`` of the lowest foot joint above the soles in the rest pose, metres."""
    out = body(betas, torch.zeros(len(betas), 72, dtype=betas.dtype), vertices="all")
    return out.joints[:, [7, 8, 10, 11], 1].amin(dim=1) - out.vertices[..., 1].amin(dim=1)


def place_people(body, betas: np.ndarray, motions: list[PersonMotion], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """SMPL ``pose (P, T, 72)`` and ``trans (P, T, 3)`` in the camera frame, feet on the ground."""
    betas_t = torch.as_tensor(betas, dtype=torch.float32)
    euler = np.stack([m.euler for m in motions])  # (P, T, 24, 3)
    heading = np.stack([m.heading for m in motions])
    root_world = rotation_y(heading) @ euler_to_matrix(euler[:, :, 0])
    world_pose = body_pose_from_euler(euler)
    world_pose[..., :3] = matrix_to_axis_angle(torch.from_numpy(root_world)).numpy()
    with torch.no_grad():
        joints = body(betas_t[:, None], torch.as_tensor(world_pose, dtype=torch.float32)).joints.double().numpy()
        clearance = standing_clearance(body, betas_t).double().numpy()
        root_rest = body.rest_joints(betas_t)[:, 0].double().numpy()  # (P, 3)
    lowest = joints[:, :, [7, 8, 10, 11], 1].min(axis=2) - root_rest[:, None, 1]
    lift = np.stack([m.lift for m in motions])
    ground = np.stack([m.ground_xz for m in motions])
    pelvis_world = np.stack([ground[..., 0], clearance[:, None] - lowest + lift, ground[..., 1]], axis=-1)

    root_camera = np.einsum("tij,ptjk->ptik", camera.rotation, root_world)
    pose = world_pose.copy()
    pose[..., :3] = matrix_to_axis_angle(torch.from_numpy(root_camera)).numpy()
    pelvis_camera = np.einsum("tij,ptj->pti", camera.rotation, pelvis_world) + camera.translation
    trans = pelvis_camera - root_rest[:, None, :]
    return pose, trans


def sample_scene(rng: np.random.Generator, config: SceneConfig, body) -> Scene:
    """A random scene for ``body`` (a :class:`~comotion.body.BodyModel`)."""
    camera = sample_camera(rng, config)
    half_tan = (config.width / 2.0) / camera.K[0, 0]
    num_people = int(rng.integers(config.people[0], config.people[1] + 1))
    betas = np.clip(rng.normal(0.0, 1.0, (num_people, 10)), -2.5, 2.5)
    occluders = sample_occluders(rng, config, half_tan)
    motions = sample_motions(rng, config, num_people, half_tan, occluders)
    pose, trans = place_people(body, betas, motions, camera) if num_people else (np.zeros((0, config.num_frames, 72)), np.zeros((0, config.num_frames, 3)))
    people = []
    for k in range(num_people):
        people.append(Person(betas=betas[k], appearance=sample_appearance(rng), motion=motions[k], pose=pose[k], trans=trans[k]))
    light = np.array([rng.uniform(-1, 1), -rng.uniform(0.5, 1.5), rng.uniform(-1, 0.3)])
    return Scene(
        camera=camera,
        people=people,
        occluders=occluders,
        background=random_background(rng),
        light_direction=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.3, 0.6)),
        effects=random_effects(rng),
    )
