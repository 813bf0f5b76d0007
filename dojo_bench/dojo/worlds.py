"""The dojo's two worlds, both built on gym-pusht's physics and renderer (same 96x96 camera).

- ``RobotLab``: the robot lab, gym-pusht's PushT with a benchmark task's start distribution and threshold.
- ``HumanWorld``: the analog of DreamDojo's human videos: a different embodiment (a square, tan "hand" with
  softer, slower PD gains) pushing varied objects (8 shapes, the T among them) of varied colours over varied
  backgrounds. Its recordings keep no actions; the true actions go to a separate dataset.

Both expose the same small face that the scripted policies and the recorder use: ``reset(seed)``, ``step``,
``observation()``, ``ground_truth()``, the object's local polygons, and a physics snapshot for look-ahead.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pygame
    import pymunk
    import shapely.geometry as sg
    from gym_pusht.envs.pusht import PushTEnv
    from gym_pusht.envs.pymunk_override import DrawOptions

from dojo_bench.core import stop
from dojo_bench.core.keys import GT_COVERAGE, GT_OBJECT_POSE, GT_PROGRESS, GT_SUCCESS, OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.tasks import GOAL_POSE, TaskSpec

ARENA_LOW, ARENA_HIGH = 40.0, 472.0  # where agents may be placed and sent: inside the walls at 5 and 506


@dataclass(frozen=True)
class PhysicsState:
    """Everything that moves: enough to rewind the simulation after a look-ahead."""

    agent_position: tuple[float, float]
    agent_velocity: tuple[float, float]
    object_position: tuple[float, float]
    object_angle: float
    object_velocity: tuple[float, float]
    object_angular_velocity: float


class PushWorld(PushTEnv):
    """Shared behaviour of the dojo's worlds on top of gym-pusht's ``PushTEnv`` (pixels + agent position)."""

    agent_radius: float = 15.0  # collision radius the scripted policies plan with
    success_threshold: float

    def __init__(self) -> None:
        super().__init__(obs_type="pixels_agent_pos", render_mode="rgb_array")

    # -- the face used by policies and the recorder ------------------------------------------------------
    def observation(self) -> dict[str, np.ndarray]:
        """{OBS_IMAGE: (96, 96, 3) uint8, OBS_STATE: (2,) float32 agent position in arena pixels}."""
        return {
            OBS_IMAGE: self._render(),
            OBS_STATE: np.asarray(self.agent.position, dtype=np.float32),
        }

    def coverage(self) -> float:
        return float(self._get_coverage())

    def ground_truth(self) -> dict[str, np.ndarray]:
        """Per-frame ground truth of the state on screen (keys in dojo_bench.core.keys)."""
        coverage = self.coverage()
        return {
            GT_OBJECT_POSE: self.object_pose().astype(np.float32),
            GT_COVERAGE: np.array([coverage], dtype=np.float32),
            GT_PROGRESS: np.array([min(1.0, coverage / self.success_threshold)], dtype=np.float32),
            GT_SUCCESS: np.array([coverage >= self.success_threshold]),
        }

    def object_pose(self) -> np.ndarray:
        return np.array([*self.block.position, self.block.angle], dtype=np.float64)

    def object_polygons(self) -> list[np.ndarray]:
        """The object's convex parts in its body frame, each (K, 2)."""
        return [np.array([tuple(v) for v in shape.get_vertices()]) for shape in self.block.shapes]

    def act(self, target: np.ndarray) -> None:
        """Advance physics by one control step towards ``target`` (2,) without rendering (for look-ahead)."""
        target = pymunk.Vec2d(*np.clip(target, 0, 512))
        for _ in range(int(1 / (self.dt * self.control_hz))):
            acceleration = self.k_p * (target - self.agent.position) - self.k_v * self.agent.velocity
            self.agent.velocity += acceleration * self.dt
            self.space.step(self.dt)
        stop.check()  # a stop that landed inside pymunk's collision callback was dropped there

    def snapshot(self) -> PhysicsState:
        return PhysicsState(
            tuple(self.agent.position),
            tuple(self.agent.velocity),
            tuple(self.block.position),
            float(self.block.angle),
            tuple(self.block.velocity),
            float(self.block.angular_velocity),
        )

    def restore(self, state: PhysicsState) -> None:
        self.agent.position = state.agent_position
        self.agent.velocity = state.agent_velocity
        self.block.angle = (
            state.object_angle
        )  # before the position: pymunk rotates about the centre of gravity
        self.block.position = state.object_position
        self.block.velocity = state.object_velocity
        self.block.angular_velocity = state.object_angular_velocity
        self.space.reindex_shapes_for_body(self.agent)
        self.space.reindex_shapes_for_body(self.block)

    # -- start states ---------------------------------------------------------------------------------
    def _place_agent(self, rng: np.random.Generator, object_pose: np.ndarray) -> np.ndarray:
        """An agent position uniformly over the arena, at least a body length away from the object."""
        body = self.get_goal_pose_body(np.asarray(object_pose))
        geom = sg.MultiPolygon(
            [sg.Polygon([body.local_to_world(tuple(v)) for v in poly]) for poly in self.object_polygons()]
        )
        for _ in range(1000):
            candidate = rng.uniform(ARENA_LOW, ARENA_HIGH, size=2)
            if geom.distance(sg.Point(candidate)) > self.agent_radius + 10:
                return candidate
        raise RuntimeError("could not place the agent away from the object")


class RobotLab(PushWorld):
    """gym-pusht's PushT under a benchmark task (see tasks.py)."""

    def __init__(self, task: TaskSpec) -> None:
        super().__init__()
        self.task = task
        self.success_threshold = task.success_threshold

    def reset(self, seed: int | None = None, options: dict | None = None):
        """Seeded start state: gym-pusht's own sampling for the stock task, the task's distribution otherwise."""
        if self.task.start is None or (options and "reset_to_state" in options):
            out = super().reset(seed=seed, options=options)
        else:
            rng = np.random.default_rng(seed)
            super().reset(seed=seed)  # builds the scene so the agent can be placed against it
            object_pose = self.task.start.sample_object_pose(rng)
            state = np.concatenate([self._place_agent(rng, object_pose), object_pose])
            super().reset(seed=seed, options={"reset_to_state": state})
            # gym-pusht sets the position before the angle, which turns the body about its centre of gravity
            # and so moves it (kept upstream for legacy data). Place it exactly where it was sampled.
            self.block.angle = object_pose[2]
            self.block.position = tuple(object_pose[:2])
            self.space.reindex_shapes_for_body(self.block)
            out = self.get_obs(), self._get_info()
        self.success_threshold = self.task.success_threshold
        return out


# -- the "human video" world ------------------------------------------------------------------------------
def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _regular(n: int, radius: float, phase: float = 0.0) -> list[tuple[float, float]]:
    return [
        (radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n))
        for k in range(n)
    ]


# Each shape is a union of convex polygons (pymunk needs convex parts), sized like the T (about 120 px).
SHAPES: dict[str, list[list[tuple[float, float]]]] = {
    "tee": [_rect(-60, 0, 60, 30), _rect(-15, 30, 15, 120)],
    "ell": [_rect(-50, -60, -20, 60), _rect(-20, 30, 50, 60)],
    "box": [_rect(-40, -40, 40, 40)],
    "triangle": [_regular(3, 62, math.pi / 2)],
    "bar": [_rect(-70, -18, 70, 18)],
    "cross": [_rect(-60, -16, 60, 16), _rect(-16, -60, 16, -16), _rect(-16, 16, 16, 60)],
    "hexagon": [_regular(6, 48)],
    "you": [_rect(-55, -50, -25, 50), _rect(-25, 20, 25, 50), _rect(25, -50, 55, 50)],
}
OBJECT_COLOURS = [(220, 60, 60), (60, 110, 200), (230, 150, 40), (120, 70, 160), (40, 150, 120), (90, 90, 90)]
BACKGROUNDS = [(255, 255, 255), (238, 232, 214), (214, 228, 238), (226, 238, 214), (200, 200, 200)]
HAND_COLOUR = (205, 140, 100)


class HumanWorld(PushWorld):
    """Another embodiment acting on varied scenes; the scene is drawn from the episode seed."""

    agent_radius = 24.0  # the hand is a 34 px square: plan with its half-diagonal
    hand_size = 34.0

    def __init__(self, success_threshold: float = 0.9) -> None:
        self._scene_rng = np.random.default_rng(0)
        self.shape_name = "tee"
        super().__init__()
        self.k_p, self.k_v = 60, 14  # softer, slower than the robot's 100 / 20
        self.success_threshold = success_threshold

    def reset(self, seed: int | None = None, options: dict | None = None):
        rng = np.random.default_rng(seed)
        self.shape_name = str(rng.choice(list(SHAPES)))
        self.object_colour = OBJECT_COLOURS[rng.integers(len(OBJECT_COLOURS))]
        self.background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
        super().reset(seed=seed)  # _setup builds the scene for the chosen shape
        self.goal_pose = np.array(
            [rng.uniform(170, 342), rng.uniform(170, 342), rng.uniform(-math.pi, math.pi)]
        )
        offset = rng.uniform(50, 150)
        direction = rng.uniform(-math.pi, math.pi)
        object_pose = np.array(
            [
                np.clip(self.goal_pose[0] + offset * math.cos(direction), 110, 402),
                np.clip(self.goal_pose[1] + offset * math.sin(direction), 110, 402),
                rng.uniform(-math.pi, math.pi),
            ]
        )
        state = np.concatenate([self._place_agent(rng, object_pose), object_pose])
        self._set_state(state)
        return self.get_obs(), self._get_info()

    def _setup(self) -> None:
        super()._setup()  # walls, collision handler; then swap in our hand and object
        self.space.remove(self.agent, *self.agent.shapes)
        self.space.remove(self.block, *self.block.shapes)
        self.agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        hand = pymunk.Poly.create_box(self.agent, (self.hand_size, self.hand_size), radius=3)
        hand.color = pygame.Color(*HAND_COLOUR)
        self.space.add(self.agent, hand)
        self.block, self._block_shapes = self._add_object(SHAPES[self.shape_name])
        self.goal_pose = np.array(GOAL_POSE)

    def _add_object(self, parts: list[list[tuple[float, float]]]):
        mass_per_area = 1.0 / 6300.0  # the T's mass of 1 over its area
        areas = [sg.Polygon(p).area for p in parts]
        body = pymunk.Body(
            sum(areas) * mass_per_area,
            sum(pymunk.moment_for_poly(a * mass_per_area, p) for a, p in zip(areas, parts, strict=True)),
        )
        shapes = [pymunk.Poly(body, p) for p in parts]
        for shape in shapes:
            shape.color = pygame.Color(*getattr(self, "object_colour", OBJECT_COLOURS[0]))
        centroid = sg.MultiPolygon([sg.Polygon(p) for p in parts]).centroid
        body.center_of_gravity = (centroid.x, centroid.y)
        self.space.add(body, *shapes)
        return body, shapes

    def _draw(self):
        screen = pygame.Surface((512, 512))
        screen.fill(self.background)
        goal_body = self.get_goal_pose_body(self.goal_pose)
        goal_colour = tuple(
            int(0.35 * c + 0.65 * b) for c, b in zip(self.object_colour, self.background, strict=True)
        )
        for shape in self.block.shapes:
            points = [goal_body.local_to_world(v) for v in shape.get_vertices()]
            pygame.draw.polygon(screen, goal_colour, [(p.x, p.y) for p in points])
        self.space.debug_draw(DrawOptions(screen))
        return screen
