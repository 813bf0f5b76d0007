"""Scripted policies of the dojo: an expert and play policies (noisy expert, random pushes).

They are privileged: they read the simulator (object pose, goal, geometry) and look ahead in it, which is what
makes them good data sources and useless as policies to benchmark. Actions are gym-pusht's: a 2-D target
position for the agent's PD controller, in arena pixels.

The expert plans *push primitives*. A primitive picks a point on the object's outline; the agent walks to just
outside it (around the object if the straight way is blocked), then pushes inward along the outline's normal.
Candidate points are ranked by how much pushing them moves them towards where they belong in the goal pose,
the best few are simulated (the physics is rewound afterwards), and the one that leaves the object closest to
the goal pose wins. Re-planned after every primitive, so it corrects its own mistakes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely.geometry as sg
from shapely.ops import unary_union

from dojo_bench.dojo.worlds import ARENA_HIGH, ARENA_LOW, PushWorld


@dataclass(frozen=True)
class ExpertConfig:
    """Knobs of the push-primitive expert."""

    candidates: int = 8  # points simulated per decision
    candidate_spread: float = 20.0  # px apart (body frame) along the outline
    push_depths: tuple[float, ...] = (
        3.0,
        8.0,
        20.0,
        45.0,
    )  # how far inside the outline the push target goes, px
    push_steps: int = 6  # control steps of one push
    max_approach_steps: int = 25  # give up a primitive whose approach takes longer
    max_step: float = 45.0  # farthest target from the agent while walking (limits speed), px
    boundary_spacing: float = 8.0  # px between candidate points on the outline

    def __post_init__(self) -> None:
        if self.candidates <= 0 or self.push_steps <= 0 or not self.push_depths:
            raise ValueError("candidates, push_steps must be positive and push_depths non-empty")


@dataclass(frozen=True)
class Primitive:
    point: np.ndarray  # (2,) contact point in the object's body frame
    normal: np.ndarray  # (2,) outward unit normal there, body frame
    depth: float


def _rotation(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def to_world(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) body-frame points -> world points for the body pose (x, y, theta)."""
    return points @ _rotation(pose[2]).T + pose[:2]


def outline_samples(polygons: list[np.ndarray], spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on the outer outline of a union of convex polygons and their outward normals, (N, 2) each."""
    union = unary_union([sg.Polygon(p) for p in polygons])
    ring = np.asarray(union.exterior.coords)
    if not sg.LinearRing(ring).is_ccw:
        ring = ring[::-1]
    points, normals = [], []
    for a, b in zip(ring[:-1], ring[1:], strict=True):
        edge = b - a
        length = float(np.linalg.norm(edge))
        if length < 1e-6:
            continue
        normal = np.array([edge[1], -edge[0]]) / length  # outward for a counter-clockwise ring
        count = max(1, int(length // spacing))
        for k in range(count):
            points.append(a + edge * (k + 0.5) / count)
            normals.append(normal)
    return np.array(points), np.array(normals)


def pose_error(polygons: list[np.ndarray], pose: np.ndarray, goal: np.ndarray) -> float:
    """Mean distance (px) between the object's vertices at ``pose`` and at ``goal``."""
    vertices = np.concatenate(polygons)
    return float(np.linalg.norm(to_world(pose, vertices) - to_world(goal, vertices), axis=1).mean())


class PushExpert:
    """The scripted expert. ``reset(world, rng)`` then ``act(world) -> (2,) target`` each step."""

    def __init__(self, config: ExpertConfig | None = None) -> None:
        self.config = config or ExpertConfig()

    def reset(self, world: PushWorld, rng: np.random.Generator) -> None:
        self.rng = rng
        self.polygons = world.object_polygons()
        self.points, self.normals = outline_samples(self.polygons, self.config.boundary_spacing)
        self.outline = unary_union([sg.Polygon(p) for p in self.polygons])
        self.keep_out = self.outline.buffer(world.agent_radius + 2)  # the agent's centre must stay outside
        self.walkway = self.outline.buffer(world.agent_radius + 15, quad_segs=4)  # detours follow its outline
        self.plan: Primitive | None = None
        self.phase_steps = 0
        self.pushing = False

    # -- the controller that executes one primitive ------------------------------------------------------
    def _target(self, world: PushWorld, primitive: Primitive) -> tuple[np.ndarray, bool]:
        """The next target for ``primitive`` and whether the primitive has finished."""
        pose = world.object_pose()
        point = to_world(pose, primitive.point[None])[0]
        normal = _rotation(pose[2]) @ primitive.normal
        agent = np.asarray(world.agent.position)
        if self.pushing:
            self.phase_steps += 1
            return self.push_target, self.phase_steps >= self.config.push_steps
        standoff = point + normal * (world.agent_radius + 6)
        self.phase_steps += 1
        if np.linalg.norm(agent - standoff) < 6:
            # The push target is fixed when the push starts: the object moves about ``depth``, no further.
            self.pushing, self.phase_steps = True, 0
            self.push_target = point - normal * primitive.depth
            return self.push_target, False
        return self._walk(world, pose, agent, standoff), self.phase_steps >= self.config.max_approach_steps

    def _walk(self, world: PushWorld, pose: np.ndarray, agent: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """A target towards ``goal``: straight when the way is clear, else along the object's outline.

        Works in the object's body frame, where the outline and its inflated copies never change.
        """
        rotation = _rotation(pose[2])
        agent_local = (agent - pose[:2]) @ rotation
        goal_local = (goal - pose[:2]) @ rotation
        here = sg.Point(agent_local)
        if self.outline.exterior.distance(here) - world.agent_radius < 2 and np.linalg.norm(goal - agent) > 6:
            # Touching the object (after a push): back straight off first, or walking away would drag it.
            nearest = np.asarray(
                self.outline.exterior.interpolate(self.outline.exterior.project(here)).coords[0]
            )
            away = agent_local - nearest
            step_local = away / max(float(np.linalg.norm(away)), 1e-6) * 10
        elif not self.keep_out.intersects(sg.LineString([agent_local, goal_local])):
            step_local = goal_local - agent_local
        else:
            # Walk around the object on a ring just outside it, the short way round to the goal's side.
            ring = self.walkway.exterior
            at, to = ring.project(here), ring.project(sg.Point(goal_local))
            forward = (to - at) % ring.length
            ahead = min(30.0, forward if forward <= ring.length / 2 else ring.length - forward)
            along = at + ahead if forward <= ring.length / 2 else at - ahead
            step_local = np.asarray(ring.interpolate(along % ring.length).coords[0]) - agent_local
        step = rotation @ step_local
        distance = float(np.linalg.norm(step))
        if distance > self.config.max_step:
            step = step * self.config.max_step / distance
        return np.clip(agent + step, ARENA_LOW - 30, ARENA_HIGH + 30)

    # -- planning -----------------------------------------------------------------------------------------
    def candidates(
        self, world: PushWorld, count: int | None = None, spread: float | None = None, depths=None
    ) -> list[Primitive]:
        """Primitives worth simulating, best heuristic first (defaults from the config)."""
        count = count or self.config.candidates
        spread = spread or self.config.candidate_spread
        depths = depths or self.config.push_depths
        pose, goal = world.object_pose(), world.goal_pose
        here = to_world(pose, self.points)
        there = to_world(goal, self.points)
        push = -(self.normals @ _rotation(pose[2]).T)  # world direction of pushing each point
        gain = np.einsum("nd,nd->n", there - here, push)
        chosen: list[int] = []
        for i in np.argsort(-gain):  # best first, but spread along the outline so candidates differ
            if all(np.linalg.norm(self.points[i] - self.points[j]) > spread for j in chosen):
                chosen.append(int(i))
            if len(chosen) == count:
                break
        return [Primitive(self.points[i], self.normals[i], d) for i in chosen for d in depths]

    def simulate(self, world: PushWorld, primitive: Primitive) -> float:
        """Pose error after running ``primitive`` in the world's physics; the world is rewound afterwards."""
        saved = world.snapshot()
        self.plan, self.pushing, self.phase_steps = primitive, False, 0
        for _ in range(self.config.max_approach_steps + self.config.push_steps + 1):
            target, done = self._target(world, primitive)
            world.act(target)
            if done:
                break
        error = pose_error(self.polygons, world.object_pose(), world.goal_pose)
        world.restore(saved)
        return error

    def choose(self, world: PushWorld) -> Primitive:
        options = self.candidates(world)
        errors = [self.simulate(world, p) for p in options]
        now = pose_error(self.polygons, world.object_pose(), world.goal_pose)
        if min(errors) >= now:
            # Stuck (usually close to the goal): widen the search to gentle pushes anywhere on the outline.
            fine = self.candidates(
                world,
                count=3 * self.config.candidates,
                spread=0.5 * self.config.candidate_spread,
                depths=(2.0, 5.0),
            )
            options += fine
            errors += [self.simulate(world, p) for p in fine]
        return options[int(np.argmin(errors))]

    def act(self, world: PushWorld) -> np.ndarray:
        if self.plan is None:
            self.plan = self.choose(world)
            self.pushing, self.phase_steps = False, 0
        target, done = self._target(world, self.plan)
        if done:
            self.plan = None
        return target.astype(np.float32)


@dataclass(frozen=True)
class NoisyExpertConfig:
    """Play policy: the expert that sometimes picks a poor primitive and shakes its hand."""

    action_noise: float = 12.0  # px, Gaussian on every target
    wrong_choice: float = 0.3  # probability of picking a random candidate instead of the best


class NoisyExpert(PushExpert):
    def __init__(self, noise: NoisyExpertConfig | None = None, config: ExpertConfig | None = None) -> None:
        super().__init__(config)
        self.noise = noise or NoisyExpertConfig()

    def choose(self, world: PushWorld) -> Primitive:
        if self.rng.random() < self.noise.wrong_choice:
            options = self.candidates(world)
            return options[int(self.rng.integers(len(options)))]
        return super().choose(world)

    def act(self, world: PushWorld) -> np.ndarray:
        target = super().act(world)
        return (target + self.rng.normal(0, self.noise.action_noise, size=2)).astype(np.float32)


class RandomPusher(PushExpert):
    """Play policy: pushes random points of the object in random amounts, or wanders to random places."""

    wander_probability = 0.25

    def choose(self, world: PushWorld) -> Primitive:
        i = int(self.rng.integers(len(self.points)))
        return Primitive(self.points[i], self.normals[i], float(self.rng.uniform(5, 40)))

    def act(self, world: PushWorld) -> np.ndarray:
        if (
            self.plan is None
            and getattr(self, "wander_left", 0) == 0
            and self.rng.random() < self.wander_probability
        ):
            self.wander_target = self.rng.uniform(ARENA_LOW, ARENA_HIGH, size=2)
            self.wander_left = int(self.rng.integers(3, 10))
        if getattr(self, "wander_left", 0) > 0:
            self.wander_left -= 1
            agent = np.asarray(world.agent.position)
            return self._walk(world, world.object_pose(), agent, self.wander_target).astype(np.float32)
        return super().act(world)


POLICIES = {"expert": PushExpert, "noisy": NoisyExpert, "random": RandomPusher}


def make_policy(name: str) -> PushExpert:
    """A fresh scripted policy by name (``expert``, ``noisy`` or ``random``)."""
    return POLICIES[name]()
