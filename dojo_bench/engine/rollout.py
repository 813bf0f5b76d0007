"""One rollout engine for the real dojo and the imagined one: engine, worlds and scorers, nothing else.

    world = RealWorlds(get_task("pusht_bench"))                      # or ImaginedWorld(env, RealWorlds(task).reset)
    scorer = GroundTruthScorer()                                     # or ValueScorer(value_model_progress, 0.9)
    records = run_episodes(policy, world, seeds=[0, 1, 2], max_steps=200, scorer=scorer)

Pieces (kept apart so that none grows a 14-argument signature):

- ``World``: batched ``reset(seeds) -> observations`` and ``step(action_chunk (B, K, A)) -> (observations, info)``.
  Observations are the dojo's dict (``observation.image`` (B, 96, 96, 3) uint8, ``observation.state`` (B, 2)
  float32, numpy) in both worlds, so a policy cannot tell them apart. ``info["frames"]`` (B, K, H, W, 3) uint8 holds
  every frame after an action when the world renders them; the real world also reports per-step ground truth
  (``info["progress"]``, ``info["success"]``, both (B, K)).
- ``Scorer``: ``score(info) -> (progress (B, K), success (B, K))``. The real world is scored by its ground truth,
  the imagined world by a value model (any callable frames -> progress) with a success threshold on progress.
- ``run_episodes``: drives one policy over a batch of seeds with action chunking through the policy's chunk API
  (``predict_chunk``), and returns one ``EpisodeRecord`` per seed.

Episode semantics (the same in both worlds): an episode ends at the first step whose frame is scored successful,
after ``max_steps`` steps, or when it is flagged. ``steps`` counts executed actions up to that end; ``max_progress``
is the maximum over the frames after each executed action (the start frame is not scored: the benchmark's starts
are never successful). A policy that returns NaN or inf actions gets the flag ``nonfinite_action``; its episode is
stopped there and counts as a failure (never a silent number), and the world holds it in place afterwards.
Non-finite progress from a scorer flags ``nonfinite_progress`` the same way.

The real worlds run in this process, one ``RobotLab`` after another, or split over worker processes
(``RealWorlds(task, workers=N)``); frames are only rendered per step when ``render_frames=True`` (rendering costs
more than the physics), otherwise only the observation after each chunk is rendered.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from dojo_bench.core.arrays import to_numpy
from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import GT_PROGRESS, GT_SUCCESS, OBS_IMAGE, OBS_STATE

REAL = "real"
IMAGINED = "imagined"
FLAG_NONFINITE_ACTION = "nonfinite_action"
FLAG_NONFINITE_PROGRESS = "nonfinite_progress"
FLAG_SEPARATOR = ","

if TYPE_CHECKING:  # torch is imported where it is used, so real-world worker processes start without it
    import torch


# ----------------------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class EpisodeRecord:
    """One episode's outcome, one row of the results table (``flags`` stored joined by commas)."""

    policy: str
    seed: int
    world: str
    success: bool
    max_progress: float
    steps: int
    flags: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.policy, self.seed, self.world)

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row["flags"] = FLAG_SEPARATOR.join(self.flags)
        return row


# ----------------------------------------------------------------------------------------------------------------------
# Protocols
# ----------------------------------------------------------------------------------------------------------------------


@runtime_checkable
class ChunkPolicy(Protocol):
    """What the engine needs of a policy (``policies.loading.LoadedPolicy`` has it)."""

    name: str
    action_dim: int
    chunk_size: int

    def reset(self) -> None: ...

    def predict_chunk(self, observation: dict[str, Any]) -> Any:
        """Policy observation (``to_policy_observation``) -> (B, chunk_size, action_dim) actions in env units."""
        ...


class World(Protocol):
    """A batch of B episodes stepped together (see the module docstring)."""

    name: str  # REAL or IMAGINED
    action_dim: int
    chunk_multiple: int  # step() takes K actions with K a multiple of this

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]: ...

    def step(
        self, action_chunk: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...


class StepRecorder(Protocol):
    """Watches an episode batch step by step (e.g. ``dojo_bench.engine.media.MediaRecorder``)."""

    def __call__(
        self, seeds: list[int], t: int, info: dict[str, Any], progress: np.ndarray, valid: np.ndarray
    ) -> None:
        """After each ``step``: the batch's seeds, the step index of the chunk's first action, the world's info,
        the scored progress (B, K) and ``valid`` (B, K) bool: which of those frames belong to an episode (executed,
        scored, and not after its end)."""
        ...


class Scorer(Protocol):
    """Per-frame progress and success of the frames a ``step`` produced."""

    def score(self, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """-> (progress (B, K) float in [0, 1], success (B, K) bool)."""
        ...


# ----------------------------------------------------------------------------------------------------------------------
# Worlds
# ----------------------------------------------------------------------------------------------------------------------


class EnvSlice:
    """Some ``RobotLab`` envs of one task stepped one after another; the unit of work of a worker process."""

    def __init__(self, task, render_frames: bool = False) -> None:
        self.task = task
        self.render_frames = render_frames
        self.envs: list[Any] = []
        self.batch = 0

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        from dojo_bench.dojo.worlds import RobotLab  # pygame / pymunk only when a real world is used

        while len(self.envs) < len(seeds):
            self.envs.append(RobotLab(self.task))
        self.batch = len(seeds)
        for env, seed in zip(self.envs, seeds, strict=False):
            env.reset(seed=int(seed))
        return self.observations()

    def step(
        self, actions: np.ndarray, active: np.ndarray, render: bool | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        b, k = actions.shape[:2]
        progress = np.zeros((b, k), dtype=np.float32)
        success = np.zeros((b, k), dtype=bool)
        render = self.render_frames if render is None else render
        frames = np.zeros((b, k, 96, 96, 3), dtype=np.uint8) if render else None
        for i in np.flatnonzero(active):
            env = self.envs[i]
            for j in range(k):
                env.act(np.clip(actions[i, j], 0, 512))
                truth = env.ground_truth()
                progress[i, j] = truth[GT_PROGRESS][0]
                success[i, j] = bool(truth[GT_SUCCESS][0])
                if frames is not None:
                    frames[i, j] = env.observation()[OBS_IMAGE]
        info: dict[str, Any] = {"progress": progress, "success": success}
        if frames is not None:
            info["frames"] = frames
        return self.observations(), info

    def observations(self) -> dict[str, np.ndarray]:
        observations = [env.observation() for env in self.envs[: self.batch]]
        return {key: np.stack([o[key] for o in observations]) for key in (OBS_IMAGE, OBS_STATE)}


def _slice_worker(connection, task, render_frames: bool) -> None:
    """Serve ``EnvSlice`` calls over a pipe until told to close (or the pipe breaks)."""
    envs = EnvSlice(task, render_frames)
    while True:
        try:
            command, args = connection.recv()
        except (EOFError, OSError):
            return
        if command == "close":
            return
        try:
            connection.send(("ok", getattr(envs, command)(*args)))
        except Exception as error:  # report in the parent, with the worker's message
            connection.send(("error", f"{type(error).__name__}: {error}"))


class RealWorlds:
    """B ``RobotLab`` envs of one task: in this process (``workers=0``) or split over worker processes.

    ``step`` executes each action of the chunk with ``RobotLab.act`` and reads the ground truth after each one;
    inactive episodes (``active[i]`` False) are not stepped and report zero progress. With ``workers > 0`` the
    batch is cut into contiguous slices, one per worker (``spawn`` processes, started on first use); results are
    identical to the in-process loop. Call ``close()`` (or use ``with``) to stop the workers. ``render_frames`` may
    be changed between batches (e.g. to render only the batches whose frames are kept, dojo_bench/engine/media.py).
    """

    name = REAL
    action_dim = 2
    chunk_multiple = 1

    def __init__(self, task, render_frames: bool = False, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.task = task
        self.render_frames = render_frames
        self.workers = workers
        self.local = EnvSlice(task, render_frames)
        self._pipes: list[Any] = []
        self._processes: list[Any] = []
        self._slices: list[slice] = []
        self.batch = 0

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        seeds = [int(s) for s in seeds]
        self.batch = len(seeds)
        if not self.workers:
            return self.local.reset(seeds)
        self._start()
        bounds = np.linspace(0, len(seeds), min(self.workers, len(seeds)) + 1).round().astype(int)
        self._slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        results = self._call_all("reset", [(seeds[s],) for s in self._slices])
        return _concat([r for r in results])

    def step(
        self, action_chunk: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        actions = np.asarray(action_chunk, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[0] != self.batch or actions.shape[2] != self.action_dim:
            raise ValueError(
                f"action_chunk must be ({self.batch}, K, {self.action_dim}), got {actions.shape}"
            )
        active = np.ones(self.batch, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        if not self.workers:
            return self.local.step(actions, active, self.render_frames)
        results = self._call_all("step", [(actions[s], active[s], self.render_frames) for s in self._slices])
        return _concat([r[0] for r in results]), _concat([r[1] for r in results])

    def _start(self) -> None:
        if self._processes:
            return

        context = multiprocessing.get_context("spawn")
        for _ in range(self.workers):
            parent, child = context.Pipe()
            process = context.Process(
                target=_slice_worker, args=(child, self.task, self.render_frames), daemon=True
            )
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)

    def _call_all(self, command: str, args: list[tuple]) -> list[Any]:
        try:
            for pipe, arg in zip(self._pipes, args, strict=False):
                pipe.send((command, arg))
        except (BrokenPipeError, OSError):
            self.close()
            raise DojoError(
                "real-world workers are gone (a worker process died); see its error above"
            ) from None
        results = []
        for index, (pipe, _) in enumerate(zip(self._pipes, args, strict=False)):
            try:
                status, value = pipe.recv()
            except (EOFError, OSError):
                self._processes[index].join(timeout=5)
                code = self._processes[index].exitcode
                self.close()
                raise DojoError(
                    f"real-world worker {index} died (exit code {code}); workers are spawned processes, so the "
                    "main script must be importable (run from a file under `if __name__ == '__main__':`)"
                ) from None
            if status != "ok":
                raise DojoError(f"real-world worker failed: {value}")
            results.append(value)
        return results

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(("close", ()))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        self._pipes, self._processes = [], []

    def __enter__(self) -> RealWorlds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_processes", None):
            self.close()


class ReferenceWorld(RealWorlds):
    """The state-space reference for ``evaluate world_model=dojo``: the dojo's own simulator standing in for the
    imagined world (every frame rendered, scored by the value model like any imagined episode). The agreement it
    reaches is a ceiling for the harness: what is left when the world model is perfect."""

    name = IMAGINED

    def __init__(self, task, workers: int = 0) -> None:
        super().__init__(task, render_frames=True, workers=workers)
        self.frames_stepped = 0

    def step(self, action_chunk: np.ndarray, active: np.ndarray | None = None):
        self.frames_stepped += int(np.asarray(action_chunk).shape[0] * np.asarray(action_chunk).shape[1])
        return super().step(action_chunk, active)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


class ImaginedWorld:
    """``world_model.imagined_env.ImaginedEnv`` behind the ``World`` protocol.

    ``initial`` maps seeds to the batch of start observations, e.g. ``RealWorlds(task).reset`` (the real env's
    start states on the same seeds) or a reader of a LeRobot dataset's episode starts. The sampling noise is
    re-seeded at every reset from ``noise_seed`` and the batch's first seed, so a batch is reproducible.
    """

    name = IMAGINED

    def __init__(
        self, env: Any, initial: Callable[[Sequence[int]], dict[str, np.ndarray]], noise_seed: int = 0
    ) -> None:
        self.env = env
        self.initial = initial
        self.noise_seed = noise_seed
        self.action_dim = int(env.action_dim)
        self.chunk_multiple = int(env.chunk_size)
        self.frames_stepped = 0  # imagined frames, every row of every step (a throughput counter)

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        observations = self.initial(seeds)
        return self.env.reset(observations, seed=self.noise_seed * 1_000_003 + int(seeds[0]))

    def step(
        self, action_chunk: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        action_chunk = np.asarray(action_chunk, dtype=np.float32)
        self.frames_stepped += action_chunk.shape[0] * action_chunk.shape[1]
        return self.env.step(action_chunk)  # batched: inactive rows step too


# ----------------------------------------------------------------------------------------------------------------------
# Scorers
# ----------------------------------------------------------------------------------------------------------------------


class GroundTruthScorer:
    """The real world's own per-step ground truth (``info["progress"]``, ``info["success"]``)."""

    def score(self, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if "progress" not in info or "success" not in info:
            raise DojoError(
                "the ground-truth scorer needs a world that reports ground truth (the real world)"
            )
        return np.asarray(info["progress"], dtype=np.float64), np.asarray(info["success"], dtype=bool)


class ValueScorer:
    """Progress from a value model on ``info["frames"]``; success when progress reaches ``threshold``.

    ``progress_fn``: frames (N, H, W, 3) uint8 -> progress (N,) (array or tensor), or a tuple whose first item is
    progress (``ValueModel.score`` returns (progress, success probability)).
    """

    def __init__(self, progress_fn: Callable[[np.ndarray], Any], threshold: float) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"success threshold must be in (0, 1], got {threshold}")
        self.progress_fn = progress_fn
        self.threshold = threshold

    def score(self, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if "frames" not in info:
            raise DojoError("the value-model scorer needs frames: a world that renders them (info['frames'])")
        frames = np.asarray(info["frames"])
        b, k = frames.shape[:2]
        out = self.progress_fn(frames.reshape(b * k, *frames.shape[2:]))
        if isinstance(out, tuple):
            out = out[0]
        progress = to_numpy(out).astype(np.float64).reshape(b, k)
        return progress, progress >= self.threshold


# ----------------------------------------------------------------------------------------------------------------------
# Engine
# ----------------------------------------------------------------------------------------------------------------------


def to_policy_observation(observation: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """World observation -> policy input: image (B, 3, H, W) float in [0, 1], state (B, S) float32 tensors."""
    import torch  # here, not at the top: spawned real-world workers import this module and need no torch

    image = torch.as_tensor(np.asarray(observation[OBS_IMAGE]))
    if image.dtype != torch.uint8 or image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"{OBS_IMAGE} must be (B, H, W, 3) uint8, got {tuple(image.shape)} {image.dtype}")
    return {
        OBS_IMAGE: image.permute(0, 3, 1, 2).float().div(255.0),
        OBS_STATE: torch.as_tensor(np.asarray(observation[OBS_STATE]), dtype=torch.float32),
    }


def resolve_policy(policy_or_factory: ChunkPolicy | Callable[[], ChunkPolicy]) -> ChunkPolicy:
    """A policy, or a zero-argument factory (load lazily, e.g. ``lambda: load_policy(path)``)."""
    if hasattr(policy_or_factory, "predict_chunk"):
        return policy_or_factory  # type: ignore[return-value]
    if callable(policy_or_factory):
        return policy_or_factory()
    raise TypeError(
        f"expected a policy with predict_chunk or a factory, got {type(policy_or_factory).__name__}"
    )


def executed_chunk_length(policy_chunk: int, world_multiple: int) -> int:
    """Actions executed per policy query: the policy's chunk cut down to a multiple of the world's chunk."""
    usable = (policy_chunk // world_multiple) * world_multiple
    if usable <= 0:
        raise DojoError(
            f"the policy predicts {policy_chunk} actions per chunk but the world steps in multiples of "
            f"{world_multiple}; use a policy with n_action_steps >= {world_multiple}"
        )
    return usable


def needs_every_observation(policy: Any) -> bool:
    """Whether the engine drives ``policy`` step by step (``act`` / ``observe``, policies.loading.LoadedPolicy)."""
    return bool(getattr(policy, "needs_every_observation", False))


def check_policy_fits_world(policy: Any, world_multiple: int, world_name: str = "the world") -> None:
    """Refuse (one line) a step-by-step policy whose committed chunks a world cannot execute whole.

    A policy that sees every observation commits ``chunk_size`` actions per prediction (one under temporal
    ensembling); a world that steps ``world_multiple`` actions at a time can only run that exactly when it divides
    the chunk. Plain chunk policies are cut to a multiple instead (``executed_chunk_length``)."""
    chunk = int(policy.chunk_size)
    if needs_every_observation(policy) and chunk % world_multiple:
        what = (
            "chooses every action from the latest observation" if chunk == 1 else f"commits {chunk} actions"
        )
        raise DojoError(
            f"policy {policy.name} {what} (n_action_steps={chunk}) but {world_name} steps {world_multiple} "
            f"actions at a time: its rollout cannot be run as lerobot runs it; use n_action_steps a multiple of "
            f"{world_multiple} or a world model with 1-action steps"
        )
    executed_chunk_length(chunk, world_multiple)


def step_observations(
    observation: dict[str, np.ndarray], info: dict[str, Any], k: int
) -> list[dict[str, np.ndarray]]:
    """The world observation after each of the ``k`` actions of one ``step``: the intermediate ones from
    ``info["frames"]`` (B, K, H, W, 3) and ``info["states"]`` (B, K, S), the last one ``observation``."""
    if k == 1:
        return [observation]
    if "frames" not in info or "states" not in info:
        raise DojoError(
            f"a policy that sees every observation needs the world's frames and states after each action; "
            f"this world steps {k} actions at a time without reporting them"
        )
    frames, states = np.asarray(info["frames"]), np.asarray(info["states"])
    inner = [{OBS_IMAGE: frames[:, j], OBS_STATE: states[:, j]} for j in range(k - 1)]
    return [*inner, observation]


@dataclass
class _Batch:
    """The bookkeeping of one batch of episodes in ``run_episodes`` (all arrays (B,))."""

    size: int
    done: np.ndarray = field(init=False)
    success: np.ndarray = field(init=False)
    max_progress: np.ndarray = field(init=False)
    steps: np.ndarray = field(init=False)
    flags: list[list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.done = np.zeros(self.size, dtype=bool)
        self.success = np.zeros(self.size, dtype=bool)
        self.max_progress = np.zeros(self.size, dtype=np.float64)
        self.steps = np.zeros(self.size, dtype=np.int64)
        self.flags = [[] for _ in range(self.size)]

    def score(self, progress: np.ndarray, frame_success: np.ndarray, t: int, k: int, n: int) -> np.ndarray:
        """Score the ``k`` frames of a step that started at step ``t`` (only the first ``n`` count: steps past
        max_steps are executed but not scored); returns ``valid`` (B, k), the frames inside an episode."""
        valid = np.zeros((self.size, k), dtype=bool)
        for i in np.flatnonzero(~self.done):
            p, s = progress[i, :n], frame_success[i, :n]
            if not np.isfinite(p).all():
                self.flags[i].append(FLAG_NONFINITE_PROGRESS)
                self.done[i] = True
                continue
            hit = np.flatnonzero(s)
            end = int(hit[0]) + 1 if hit.size else n
            valid[i, :end] = True
            self.max_progress[i] = max(self.max_progress[i], float(p[:end].max()))
            self.steps[i] = t + end
            if hit.size:
                self.success[i] = True
                self.done[i] = True
        return valid


def run_episodes(
    policy: ChunkPolicy | Callable[[], ChunkPolicy],
    world: World,
    seeds: Sequence[int],
    max_steps: int,
    scorer: Scorer,
    recorder: StepRecorder | None = None,
) -> list[EpisodeRecord]:
    """Roll ``policy`` out in ``world`` from each seed's start, as one batch; one record per seed, in order.
    ``recorder`` (optional) is called after every step (``StepRecorder``); it never changes the outcome.

    A plain chunk policy is asked ``predict_chunk`` and its chunk (cut to a multiple of the world's steps) runs in
    one ``step``. A policy that needs every observation (``needs_every_observation``: lerobot's Diffusion Policy,
    ACT with temporal ensembling, ...) is asked ``act`` for the actions it commits to; they run in steps of the
    world's multiple, and the observation after each of them but the last goes to its ``observe``, so the policy
    sees what lerobot's evaluation loop would have shown it."""
    policy = resolve_policy(policy)
    seeds = [int(s) for s in seeds]
    if not seeds:
        return []
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    if int(policy.action_dim) != int(world.action_dim):
        raise DojoError(
            f"policy {policy.name} outputs {policy.action_dim}-d actions but the {world.name} world takes "
            f"{world.action_dim}-d actions"
        )
    multiple = int(world.chunk_multiple)
    stepwise = needs_every_observation(policy)
    check_policy_fits_world(policy, multiple, f"the {world.name} world")
    usable = executed_chunk_length(int(policy.chunk_size), multiple)
    choose = policy.act if stepwise else policy.predict_chunk
    b = len(seeds)
    batch = _Batch(b)
    done = batch.done

    policy.reset()
    observation = world.reset(seeds)
    t = 0
    while t < max_steps and not done.all():
        chunk = to_numpy(choose(to_policy_observation(observation))).astype(np.float32)
        wanted = multiple if stepwise else usable
        if (
            chunk.ndim != 3
            or chunk.shape[0] != b
            or chunk.shape[1] < wanted
            or chunk.shape[2] != world.action_dim
        ):
            raise DojoError(
                f"policy {policy.name} returned actions of shape {chunk.shape}; expected ({b}, >= {wanted}, "
                f"{world.action_dim})"
            )
        committed = (chunk.shape[1] // multiple) * multiple if stepwise else usable
        remaining = max_steps - t
        k = min(committed, -(-remaining // multiple) * multiple)  # whole world chunks covering what is left
        chunk = chunk[:, :k].copy()
        nonfinite = ~np.isfinite(chunk).all(axis=(1, 2)) & ~done
        for i in np.flatnonzero(nonfinite):
            batch.flags[i].append(FLAG_NONFINITE_ACTION)
        done |= nonfinite
        if done.all():
            break
        # the observation after each executed action (for the step-by-step policies)
        seen: list[dict[str, np.ndarray]] = []
        executed = 0
        for piece in [multiple] * (k // multiple) if stepwise else [k]:
            actions = chunk[:, executed : executed + piece].copy()
            actions[done] = _hold_actions(observation, done, piece, world.action_dim)
            observation, info = world.step(actions, active=~done)
            progress, frame_success = scorer.score(info)
            start = t + executed
            valid = batch.score(progress, frame_success, start, piece, min(piece, max_steps - start))
            if recorder is not None:
                recorder(seeds, start, info, np.asarray(progress), valid)
            if stepwise:
                seen += step_observations(observation, info, piece)
            executed += piece
            if done.all():
                break
        t += executed
        if not done.all():
            for step_observation in seen[:-1]:
                policy.observe(to_policy_observation(step_observation))
    return [
        EpisodeRecord(
            policy=str(policy.name),
            seed=seed,
            world=world.name,
            success=bool(batch.success[i] and not batch.flags[i]),
            max_progress=float(batch.max_progress[i]),
            steps=int(batch.steps[i]),
            flags=batch.flags[i],
        )
        for i, seed in enumerate(seeds)
    ]


def _hold_actions(
    observation: dict[str, np.ndarray], rows: np.ndarray, k: int, action_dim: int
) -> np.ndarray:
    """Actions that keep finished episodes where they are: the current agent position (absolute targets)."""
    state = np.asarray(observation[OBS_STATE], dtype=np.float32)[rows]
    if state.shape[1] != action_dim or not np.isfinite(state).all():
        return np.zeros((int(rows.sum()), k, action_dim), dtype=np.float32)
    return np.repeat(state[:, None], k, axis=1)


def batches(seeds: Sequence[int], batch_size: int) -> list[list[int]]:
    """Seeds cut into batches of at most ``batch_size``."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    seeds = [int(s) for s in seeds]
    return [seeds[i : i + batch_size] for i in range(0, len(seeds), batch_size)]
