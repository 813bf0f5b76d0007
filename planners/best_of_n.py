"""Best-of-N planning: propose N action chunks, score each, execute the best one in the real env, replan.

    sampler = ProposalSampler(policies, num_proposals=8, noise_std=10.0)
    planner = Planner("best_of_n", sampler, ImaginationScorer(env, value_model.score), chunk_size=8)
    records = run_episodes(planner, RealWorlds(task), seeds, max_steps, GroundTruthScorer())

A ``Planner`` has the face of a chunk policy (``name``, ``action_dim``, ``chunk_size``, ``reset``,
``predict_chunk``), so the same engine (``dojo_bench.engine.rollout.run_episodes``) drives single policies and planners
with the same episode semantics on the same seeds. At each decision it:

1. asks the ``ProposalSampler`` for N chunks (B, N, K, A) from the current real observation;
2. scores them with a ``ProposalScorer`` -> (B, N);
3. optionally refines them (``planners/cem.py``): more candidates, each scored the same way;
4. executes the best-scored candidate (``select_best``: argmax, ties to the lowest index, non-finite candidates
   never chosen while a finite one exists). The returned chunk is always one of the scored candidates.

Scorers (one per baseline, the same N proposals for all):

- ``ImaginationScorer`` ("world_model"): all B*N proposals imagined in ONE batched ``ImaginedEnv`` call (each env's
  current observation repeated N times), the imagined frames scored by the value model. The score is the value
  model's progress on the **last** imagined frame of the chunk (``reduce="last"``, the default: the state the
  next decision starts from, and one value-model call per proposal), or the maximum over the chunk's frames
  (``reduce="max"``: rewards passing through a good state; the episode ends at its first successful frame).
- ``OracleScorer`` ("oracle", the upper bound): each real env cloned (``PushWorld.snapshot``/``restore``), every
  proposal executed in the real simulator and scored by the ground-truth progress, reduced the same way.
- ``UniformScorer`` ("uniform"): one proposal drawn uniformly at random, no imagination (DreamDojo's 37% baseline).

Imagination starts from the current real observation only: ``ImaginedEnv.reset`` repeats the observed frame over
the context when the world model was trained with more than one context frame (the project's releases use one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dojo_bench.core.arrays import to_numpy
from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import GT_PROGRESS, OBS_IMAGE, OBS_STATE
from planners.proposals import ProposalSampler
from planners.selection import gather, mask_nonfinite, select_best, uniform_choice

REDUCTIONS = ("last", "max")


class ProposalScorer(Protocol):
    name: str

    def score(self, observation: dict[str, np.ndarray], candidates: np.ndarray, seed: int) -> np.ndarray:
        """Real observation (B, ...) (env layout: image (B, H, W, 3) uint8) and candidates (B, M, K, A)
        -> scores (B, M) float64, higher is better."""
        ...


def _check_reduce(reduce: str) -> str:
    if reduce not in REDUCTIONS:
        raise DojoError(f"unknown score reduction {reduce!r}; choose one of {', '.join(REDUCTIONS)}")
    return reduce


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, tuple):  # ValueModel.score -> (progress, success probability)
        value = value[0]
    return to_numpy(value).astype(np.float64)


def from_policy_observation(observation: dict[str, Any]) -> dict[str, np.ndarray]:
    """Policy observation (image (B, 3, H, W) float in [0, 1]) -> env layout (image (B, H, W, 3) uint8).

    Exact inverse of ``rollout.to_policy_observation`` (which divides uint8 pixels by 255)."""
    image, state = to_numpy(observation[OBS_IMAGE]), to_numpy(observation[OBS_STATE])
    pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)  # (B, H, W, 3)
    return {OBS_IMAGE: pixels, OBS_STATE: state.astype(np.float32)}


# ----------------------------------------------------------------------------------------------------------------------
# Scorers
# ----------------------------------------------------------------------------------------------------------------------


class ImaginationScorer:
    """Imagine every candidate with the world model and score the frames with a value model (module doc).

    env: an ``ImaginedEnv`` (``reset(observations, seed=)``, ``step((B, K, A))`` -> info["frames"] (B, K, H, W, 3));
    value_fn: frames (N, H, W, 3) uint8 -> progress (N,) (or a tuple whose first item is progress);
    max_batch: most imagined rows per ``step`` call (None: all B*M at once; lower it when memory is short).
    """

    name = "world_model"

    def __init__(self, env: Any, value_fn: Any, reduce: str = "last", max_batch: int | None = None) -> None:
        self.env = env
        self.value_fn = value_fn
        self.reduce = _check_reduce(reduce)
        if max_batch is not None and max_batch < 1:
            raise DojoError(f"max_batch must be >= 1 or None, got {max_batch}")
        self.max_batch = max_batch

    def score(self, observation: dict[str, np.ndarray], candidates: np.ndarray, seed: int) -> np.ndarray:
        b, m, k, a = candidates.shape
        if k % int(self.env.chunk_size):
            raise DojoError(f"imagined chunks must be a multiple of {self.env.chunk_size} actions, got {k}")
        rows = {key: np.repeat(np.asarray(observation[key]), m, axis=0) for key in (OBS_IMAGE, OBS_STATE)}
        # Row i * M + j is candidate j of env i; non-finite candidates are never chosen, imagine them as zeros.
        actions = np.nan_to_num(candidates.reshape(b * m, k, a), nan=0.0, posinf=0.0, neginf=0.0)
        step = self.max_batch or b * m
        scores = []
        for part, start in enumerate(range(0, b * m, step)):
            rows_part = {key: value[start : start + step] for key, value in rows.items()}
            self.env.reset(rows_part, seed=int(seed) + part)
            _, info = self.env.step(actions[start : start + step].astype(np.float32))
            frames = np.asarray(info["frames"])  # (rows, K, H, W, 3) uint8
            if self.reduce == "last":
                scores.append(_numpy(self.value_fn(frames[:, -1])))
            else:
                n = len(frames)
                progress = _numpy(self.value_fn(frames.reshape(n * k, *frames.shape[2:])))
                scores.append(progress.reshape(n, k).max(axis=1))
        return np.concatenate(scores).reshape(b, m)


class OracleScorer:
    """Score candidates in the real simulator: clone each env, execute, read ground-truth progress, restore.

    real: the ``RealWorlds`` the planner is executed in (``workers=0``: its envs live in this process). Restoring
    puts bodies back exactly; pymunk's contact caches are not part of the snapshot, so the real rollout after a
    look-ahead can differ from one without it in the last bits, never in what was executed.
    """

    name = "oracle"

    def __init__(self, real: Any, reduce: str = "last") -> None:
        if getattr(real, "workers", 0):
            raise DojoError(
                "the oracle clones the real envs in this process: use a real world with workers=0"
            )
        self.real = real
        self.reduce = _check_reduce(reduce)

    def score(self, observation: dict[str, np.ndarray], candidates: np.ndarray, seed: int) -> np.ndarray:
        b, m, k, _ = candidates.shape
        envs = self.real.local.envs[:b]
        if len(envs) != b:
            raise DojoError(
                f"the oracle needs the {b} real envs of the batch; the real world has {len(envs)}"
            )
        scores = np.full((b, m), -np.inf)
        for i, env in enumerate(envs):
            start = env.snapshot()
            for j in range(m):
                if not np.isfinite(candidates[i, j]).all():
                    continue
                best = -np.inf
                for t in range(k):
                    env.act(np.clip(candidates[i, j, t], 0, 512))
                    if self.reduce == "max" or t == k - 1:
                        best = max(best, float(env.ground_truth()[GT_PROGRESS][0]))
                scores[i, j] = best
                env.restore(start)
        return scores


class UniformScorer:
    """A uniformly random choice among the proposals (score 1 for the drawn one, 0 for the others)."""

    name = "uniform"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def score(self, observation: dict[str, np.ndarray], candidates: np.ndarray, seed: int) -> np.ndarray:
        b, m = candidates.shape[:2]
        chosen = uniform_choice(np.random.default_rng([self.seed, int(seed) & 0xFFFFFFFF]), b, m)
        scores = np.zeros((b, m))
        scores[np.arange(b), chosen] = 1.0
        return scores


# ----------------------------------------------------------------------------------------------------------------------
# The planner
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    """One planning decision of a batch: every scored candidate (B, M, K, A), their scores (B, M), the chosen
    index (B,) and the chunk handed to the engine (B, K, A)."""

    candidates: np.ndarray
    scores: np.ndarray
    chosen: np.ndarray
    chunk: np.ndarray
    seconds: float


class Planner:
    """A chunk policy that plans (module doc). ``chunk_size``: actions executed per decision (K).

    ``refiner`` (optional, e.g. ``planners.cem.CEMRefiner``): ``refine(observation, proposals, scores, seed) ->
    (candidates (B, M, K, A), scores (B, M))`` with every candidate it scored, the proposals included.
    ``episode_seeds``: set by the runner before each batch so that proposal noise and imagination noise are a
    function of (seed, episode seeds, decision index). ``keep_decisions``: keep a ``Decision`` per call (tests).
    """

    def __init__(
        self,
        name: str,
        sampler: ProposalSampler,
        scorer: ProposalScorer,
        chunk_size: int,
        refiner: Any = None,
        seed: int = 0,
        keep_decisions: bool = False,
    ) -> None:
        if not 1 <= chunk_size <= sampler.chunk_size:
            raise DojoError(
                f"planner {name}: chunk_size {chunk_size} must be between 1 and the policies' {sampler.chunk_size}"
            )
        self.name = name
        self.sampler = sampler
        self.scorer = scorer
        self.refiner = refiner
        self.chunk_size = int(chunk_size)
        self.action_dim = sampler.action_dim
        self.seed = int(seed)
        self.keep_decisions = keep_decisions
        self.episode_seeds: list[int] = []
        self.decisions: list[Decision] = []
        self.decision_seconds: list[float] = []
        self._decision = 0

    def reset(self) -> None:
        self.sampler.reset()
        self._decision = 0

    @property
    def needs_every_observation(self) -> bool:
        """With a member that predicts from past observations (a lerobot Diffusion Policy), the engine drives the
        planner step by step (``act`` / ``observe``) so that the member's history holds every observation."""
        return self.sampler.ensemble.keeps_history

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """``predict_chunk``, then the observation joins the members' histories (the engine's stepwise face)."""
        chunk = self.predict_chunk(observation)
        self.sampler.ensemble.remember(observation)
        return chunk

    def observe(self, observation: dict[str, Any]) -> None:
        """An observation between two decisions: it joins the members' histories."""
        self.sampler.ensemble.remember(observation)

    def decision_seed(self) -> int:
        sequence = np.random.SeedSequence([self.seed, *[int(s) for s in self.episode_seeds], self._decision])
        return int(sequence.generate_state(1)[0] >> 1)  # < 2**31: safe for torch and numpy seeds

    def predict_chunk(self, observation: dict[str, Any]) -> np.ndarray:
        """Policy observation (B, ...) -> the chosen chunk (B, chunk_size, action_dim) float32."""
        started = time.perf_counter()
        seed = self.decision_seed()
        proposals = self.sampler.propose(observation, seed=seed)[:, :, : self.chunk_size]  # (B, N, K, A)
        real = from_policy_observation(observation)
        scores = self.scorer.score(real, proposals, seed)
        candidates = proposals
        if self.refiner is not None:
            candidates, scores = self.refiner.refine(real, proposals, scores, seed)
        scores = mask_nonfinite(scores, candidates)
        chosen = select_best(scores)
        chunk = gather(candidates, chosen).astype(np.float32)
        seconds = time.perf_counter() - started
        self.decision_seconds.append(seconds)
        if self.keep_decisions:
            self.decisions.append(Decision(candidates.copy(), scores, chosen, chunk.copy(), seconds))
        self._decision += 1
        return chunk


__all__ = [
    "Decision",
    "ImaginationScorer",
    "OracleScorer",
    "Planner",
    "ProposalScorer",
    "UniformScorer",
    "from_policy_observation",
]
