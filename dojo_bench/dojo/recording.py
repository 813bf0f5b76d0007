"""``dojo-bench data``: record the dojo as LeRobot datasets (v3, written with lerobot's API, offline).

Layout of ``out=DIR`` by kind:
- ``robot``: ``train/`` and ``validation/``: the robot lab under a task, scripted policies.
- ``human``: ``train/`` and ``validation/`` hold video and ground truth only (no actions, no proprioception),
  ``train_actions/`` and ``validation_actions/`` hold the hidden hand positions and actions, episode for episode,
  for the ground-truth-action ablation only.
- ``counterfactual``: ``counterfactual/``: groups of episodes sharing a start state, one per variant
  (expert, noisy, random), all of the same length.

``learner=PATH`` (robot kind, ``policy=expert``) records DAgger data instead (dojo_bench/dojo/dagger.py): a
learned policy's ``pretrained_model`` drives, the expert labels every frame in ``gt.expert_action``; the episodes'
data policy is ``dagger``.

Parallel and resumable: episodes are cut into shards of consecutive indices; worker processes write each shard
as its own LeRobot dataset under ``DIR/.work`` and mark it done; finished shards survive an interruption, an
unfinished one is redone from scratch. When every shard is done they are merged in order with lerobot's
``aggregate_datasets``. Every episode's content depends only on (seed, kind, split, index), never on the worker.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dojo_bench.core.checks import check_int, check_number
from dojo_bench.core.errors import UsageError
from dojo_bench.core.keys import (
    ACTION,
    DOJO_META_FILE,
    GT_COVERAGE,
    GT_EXPERT_ACTION,
    GT_GROUP,
    GT_OBJECT_POSE,
    GT_POLICY,
    GT_PROGRESS,
    GT_SEED,
    GT_SUCCESS,
    OBS_IMAGE,
    OBS_STATE,
)
from dojo_bench.core.run_dir import write_json
from dojo_bench.dojo.dagger import DAGGER_POLICY, LearnerWithExpert
from dojo_bench.dojo.episodes import Episode, run_episode
from dojo_bench.dojo.experts import POLICIES, make_policy
from dojo_bench.dojo.tasks import get_task

# lerobot's aggregation draws tqdm bars of its own; ours is the rich bar. tqdm reads this when it is imported.
os.environ.setdefault("TQDM_DISABLE", "1")

KINDS = ("robot", "human", "counterfactual")
KIND_CODES = {"robot": 1, "human": 2, "counterfactual": 3}
POLICY_NAMES = tuple(POLICIES)  # index = value of gt.policy
FPS = 10
HUMAN_INSTRUCTION = "Push the object onto its outline."


@dataclass
class DataConfig:
    """What ``dojo-bench data`` records. Built by the CLI from Hydra (its keys: dojo_bench/schemas.py); validated
    here."""

    kind: str = "robot"  # robot | human | counterfactual
    out: str = ""  # directory to write (required)
    episodes: int = 100  # episodes in all (counterfactual: groups, each one episode per policy)
    task: str = "pusht_bench"  # robot lab task: pusht | pusht_bench | pusht_bench_wide (docs/dojo.md)
    policy: str = "mix"  # expert | noisy | random | mix (then policy_mix weights)
    policy_mix: dict[str, float] = field(
        default_factory=lambda: {"expert": 0.5, "noisy": 0.3, "random": 0.2}
    )  # policy=mix: each episode's policy drawn with these weights
    validation_fraction: float = 0.1  # share of episodes in the validation split
    max_steps: int | None = None  # cap on actions per episode; null = the task's horizon
    counterfactual_length: int = 40  # frames per counterfactual episode
    workers: int = 0  # processes; 0 = one per core (at most 8)
    shard_size: int = 0  # episodes per resumable unit; 0 = chosen from episodes and workers
    vcodec: str = "libsvtav1"  # video codec for lerobot's encoder
    seed: int = 0  # every episode follows from (seed, kind, split, index)
    learner: str | None = None  # DAgger: a policy pretrained_model folder drives, the expert labels
    #   (policy=expert)
    learner_share: float = 1.0  # DAgger: probability the learner executes a chunk (else the expert does)
    label_chunk: int | None = None  # the re-planning expert alone (policy=expert, no learner): look-ahead
    #   labels every N steps

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"unknown kind={self.kind!r}; choose one of {', '.join(KINDS)}")
        if not self.out:
            raise UsageError("out=DIR is required: where to write the datasets")
        check_int("episodes", self.episodes)
        check_int("seed", self.seed, minimum=0)
        get_task(self.task)
        check_vcodec(self.vcodec)
        if self.policy != "mix":
            if self.policy not in POLICY_NAMES:
                raise UsageError(
                    f"unknown policy={self.policy!r}; choose mix or one of {', '.join(POLICY_NAMES)}"
                )
            self.policy_mix = {self.policy: 1.0}
        self.policy_mix = dict(self.policy_mix)
        unknown = set(self.policy_mix) - set(POLICY_NAMES)
        if unknown or not self.policy_mix:
            raise UsageError(
                f"policy_mix must map some of {', '.join(POLICY_NAMES)} to non-negative weights, "
                f"got {dict(self.policy_mix)}"
            )
        for name, weight in self.policy_mix.items():
            check_number(f"policy_mix.{name}", weight, "a number >= 0", lambda x: x >= 0)
        if sum(self.policy_mix.values()) <= 0:
            raise UsageError("policy_mix weights must not all be zero")
        check_number("validation_fraction", self.validation_fraction, "in [0, 1)", lambda x: 0 <= x < 1)
        check_int("max_steps", self.max_steps, optional=True)
        check_int("counterfactual_length", self.counterfactual_length, minimum=2, hint=" (frames)")
        for name in ("workers", "shard_size"):
            check_int(name, getattr(self, name), minimum=0, hint=" (0 picks automatically)")
        if self.learner is not None:
            self._check_learner()
        if self.label_chunk is not None:
            self._check_label_chunk()

    def _check_learner(self) -> None:
        if self.kind != "robot" or self.policy != "expert":
            raise UsageError(
                "learner= records DAgger data: it needs kind=robot policy=expert (the expert labels the learner)"
            )
        check_number("learner_share", self.learner_share, "in [0, 1]", lambda x: 0 <= x <= 1)
        from policies.loading import check_action_dim, load_policy  # lerobot only when a learner records

        self.learner = str(Path(self.learner).expanduser().resolve())
        # One-line DojoErrors for a missing or corrupt checkpoint, or one made for another action space.
        check_action_dim(load_policy(self.learner, device="cpu"), 2)  # the robot lab takes 2-D targets

    def _check_label_chunk(self) -> None:
        if self.learner is not None:
            raise UsageError(
                "label_chunk= is for the re-planning expert alone; with learner= the learner's chunk is used"
            )
        if self.kind != "robot" or self.policy != "expert":
            raise UsageError("label_chunk= records the re-planning expert: it needs kind=robot policy=expert")
        if (
            not isinstance(self.label_chunk, int)
            or isinstance(self.label_chunk, bool)
            or self.label_chunk <= 0
        ):
            raise UsageError(
                f"label_chunk must be a positive integer (the policies' chunk, e.g. 8), got {self.label_chunk!r}"
            )

    @property
    def dagger(self) -> bool:
        """Whether episodes carry look-ahead labels (gt.expert_action): a learner, or the re-planning expert."""
        return self.learner is not None or self.label_chunk is not None

    def policy_names(self) -> tuple[str, ...]:
        """Data-policy names of this run; index = value of gt.policy."""
        return (*POLICY_NAMES, DAGGER_POLICY) if self.dagger else POLICY_NAMES

    @property
    def horizon(self) -> int:
        return self.max_steps or get_task(self.task).horizon

    def num_workers(self) -> int:
        return self.workers or max(1, min(8, os.cpu_count() or 1))


# -- what each kind records ----------------------------------------------------------------------------
def _vec(dtype: str, names: list[str]) -> dict[str, Any]:
    return {"dtype": dtype, "shape": (len(names),), "names": names}


IMAGE_FEATURE = {"dtype": "video", "shape": (96, 96, 3), "names": ["height", "width", "channels"]}
GROUND_TRUTH_FEATURES = {
    GT_OBJECT_POSE: _vec("float32", ["x", "y", "theta"]),
    GT_COVERAGE: _vec("float32", ["coverage"]),
    GT_PROGRESS: _vec("float32", ["progress"]),
    GT_SUCCESS: _vec("bool", ["success"]),
    GT_POLICY: _vec("int64", ["policy"]),
    GT_SEED: _vec("int64", ["seed"]),
}
ROBOT_FEATURES = {
    OBS_IMAGE: IMAGE_FEATURE,
    OBS_STATE: _vec("float32", ["x", "y"]),
    ACTION: _vec("float32", ["x", "y"]),
    **GROUND_TRUTH_FEATURES,
}
COUNTERFACTUAL_FEATURES = {**ROBOT_FEATURES, GT_GROUP: _vec("int64", ["group"])}
HUMAN_VIDEO_FEATURES = {OBS_IMAGE: IMAGE_FEATURE, **GROUND_TRUTH_FEATURES}
HUMAN_ACTION_FEATURES = {
    OBS_STATE: _vec("float32", ["x", "y"]),
    ACTION: _vec("float32", ["x", "y"]),
    GT_POLICY: _vec("int64", ["policy"]),
    GT_SEED: _vec("int64", ["seed"]),
}


@dataclass(frozen=True)
class Split:
    """One dataset (or a video/actions pair, for the human kind) of a run."""

    name: str
    episodes: int
    first_index: int  # episode indices of this split are first_index .. first_index + episodes - 1


def plan_splits(config: DataConfig) -> list[Split]:
    if config.kind == "counterfactual":
        return [Split("counterfactual", config.episodes, 0)]
    validation = round(config.episodes * config.validation_fraction)
    if config.validation_fraction > 0 and config.episodes >= 2:
        validation = max(1, validation)
    splits = [Split("train", config.episodes - validation, 0)]
    if validation:
        splits.append(Split("validation", validation, config.episodes - validation))
    return [s for s in splits if s.episodes > 0]


def dataset_dirs(kind: str, split: str) -> dict[str, str]:
    """role -> sub-directory name: ``main`` always, ``actions`` for the human kind."""
    if kind == "human":
        return {"main": split, "actions": f"{split}_actions"}
    return {"main": split}


def episode_seed(config: DataConfig, index: int) -> int:
    """The seed of episode ``index``: a function of (seed, kind, index) only."""
    sequence = np.random.SeedSequence([config.seed, KIND_CODES[config.kind], index])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def episode_policy(config: DataConfig, seed: int) -> str:
    names = list(config.policy_mix)
    weights = np.array([config.policy_mix[n] for n in names], dtype=float)
    return names[int(np.random.default_rng([seed, 7]).choice(len(names), p=weights / weights.sum()))]


# -- producing episodes ----------------------------------------------------------------------------------
def _make_world(config: DataConfig):
    from dojo_bench.dojo.worlds import HumanWorld, RobotLab  # pygame / pymunk in the worker that draws

    task = get_task(config.task)
    return HumanWorld(task.success_threshold) if config.kind == "human" else RobotLab(task)


def load_learner(path: str):
    """The DAgger learner of a shard writer on the CPU, one torch thread (each data worker runs its own)."""
    import torch  # torch only in the data workers that run a learner

    from policies.loading import load_policy  # lerobot only when a learner records

    torch.set_num_threads(1)
    return load_policy(path, device="cpu")


def produce(config: DataConfig, world, index: int, learner=None) -> list[tuple[Episode, int]]:
    """The episode(s) for ``index``: (episode, counterfactual group or -1).

    For the counterfactual kind, index is a group: one episode per policy from the same start state.
    """
    seed = episode_seed(config, index)
    if config.kind == "counterfactual":
        return [
            (
                run_episode(
                    world,
                    make_policy(name),
                    name,
                    seed=seed + k + 1,
                    reset_seed=seed,
                    max_steps=config.counterfactual_length - 1,
                    stop_on_success=False,
                ),
                index,
            )
            for k, name in enumerate(POLICY_NAMES)
        ]
    if config.dagger:
        share = config.learner_share if learner is not None else 0.0
        policy = LearnerWithExpert(learner, make_policy("expert"), share, chunk=config.label_chunk)
        return [(run_episode(world, policy, DAGGER_POLICY, seed=seed, max_steps=config.horizon), -1)]
    name = episode_policy(config, seed)
    return [(run_episode(world, make_policy(name), name, seed=seed, max_steps=config.horizon), -1)]


def _rows(
    episode: Episode, group: int, features: dict[str, Any], policy_names: tuple[str, ...]
) -> list[dict[str, Any]]:
    length = episode.length
    constant = {
        GT_POLICY: np.array([policy_names.index(episode.policy)], dtype=np.int64),
        GT_SEED: np.array([episode.seed], dtype=np.int64),
        GT_GROUP: np.array([group], dtype=np.int64),
    }
    rows = []
    for t in range(length):
        row: dict[str, Any] = {}
        for key in features:
            row[key] = constant[key] if key in constant else episode.frames[key][t]
        rows.append(row)
    return rows


def features_for(kind: str, dagger: bool = False) -> dict[str, dict[str, Any]]:
    """role -> lerobot features (``dagger``: robot features plus the expert's label)."""
    if kind == "human":
        return {"main": HUMAN_VIDEO_FEATURES, "actions": HUMAN_ACTION_FEATURES}
    if kind == "counterfactual":
        return {"main": COUNTERFACTUAL_FEATURES}
    if dagger:
        return {"main": {**ROBOT_FEATURES, GT_EXPERT_ACTION: _vec("float32", ["x", "y"])}}
    return {"main": ROBOT_FEATURES}


# -- shards ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shard:
    split: str
    number: int
    indices: tuple[int, ...]

    def path(self, work: Path) -> Path:
        return work / self.split / f"shard-{self.number:05d}"


def plan_shards(config: DataConfig) -> list[Shard]:
    shards = []
    for split in plan_splits(config):
        size = config.shard_size or max(1, min(25, math.ceil(split.episodes / (4 * config.num_workers()))))
        indices = list(range(split.first_index, split.first_index + split.episodes))
        for number, start in enumerate(range(0, len(indices), size)):
            shards.append(Shard(split.name, number, tuple(indices[start : start + size])))
    return shards


def check_vcodec(vcodec: str) -> None:
    """``vcodec`` must be one of lerobot's encoder names (``auto``: the best hardware encoder, else libsvtav1) that
    this FFmpeg has; one UsageError line otherwise, before anything is recorded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # huggingface_hub reads it when lerobot imports it
    import av  # after the environment above; av and lerobot are slow to import
    from lerobot.datasets.video_utils import VALID_VIDEO_CODECS

    if vcodec not in VALID_VIDEO_CODECS:
        raise UsageError(f"unknown vcodec={vcodec!r}; choose one of {', '.join(sorted(VALID_VIDEO_CODECS))}")
    if vcodec != "auto":
        try:
            av.codec.Codec(vcodec, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            raise UsageError(
                f"vcodec={vcodec} is not an encoder this FFmpeg has; choose libsvtav1 or auto"
            ) from None


def _silence_encoders() -> None:
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its config for every video otherwise
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", message="Converting input from bool", category=RuntimeWarning)
    # After the environment above: both read it when imported (and lerobot, av, datasets are slow to import).
    import av
    import datasets

    av.logging.set_level(av.logging.ERROR)
    # lerobot hands logging back to ffmpeg's own stderr printer after every video it encodes
    # (datasets/video_utils.py), which then prints a "moving the moov atom" line per episode: keep PyAV's.
    av.logging.restore_default_callback = lambda: None

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def write_shard(config: DataConfig, shard: Shard, work: Path, on_episode=None) -> dict[str, Any]:
    """Record one shard as LeRobot dataset(s) under ``work``; returns its episode records and timing."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset  # after _silence_encoders' environment

    _silence_encoders()
    started = time.perf_counter()
    root = shard.path(work)
    if root.exists():
        shutil.rmtree(root)  # an unfinished shard from an interrupted run: redo it whole
    world = _make_world(config)
    instruction = HUMAN_INSTRUCTION if config.kind == "human" else get_task(config.task).instruction
    roles = features_for(config.kind, dagger=config.dagger)
    learner = load_learner(config.learner) if config.learner else None
    writers = {
        role: LeRobotDataset.create(
            repo_id=f"dojo/{shard.split}-{shard.number}-{role}",
            fps=FPS,
            features=features,
            root=root / role,
            robot_type="human" if config.kind == "human" else "pusht",
            use_videos=OBS_IMAGE in features,
            streaming_encoding=OBS_IMAGE in features,
            vcodec=config.vcodec,
        )
        for role, features in roles.items()
    }
    records, frames = [], 0
    for index in shard.indices:
        for episode, group in produce(config, world, index, learner):
            for role, writer in writers.items():
                for row in _rows(episode, group, roles[role], config.policy_names()):
                    writer.add_frame({**row, "task": instruction})
                writer.save_episode()
            frames += episode.length
            records.append(
                {
                    "index": index,
                    "seed": episode.seed,
                    "policy": episode.policy,
                    "group": group,
                    "length": episode.length,
                    "success": episode.success,
                    "max_coverage": round(episode.max_coverage, 4),
                }
            )
        if on_episode is not None:
            on_episode()
    for writer in writers.values():
        writer.finalize()
    result = {"episodes": records, "frames": frames, "seconds": time.perf_counter() - started}
    write_json(root / "DONE.json", result)
    return result


_progress_queue = None


def _init_worker(queue) -> None:
    global _progress_queue
    _progress_queue = queue
    # The CLI turns SIGTERM into KeyboardInterrupt (resumable stop); a forked worker inherits that handler, but the
    # pool stops its workers with SIGTERM and must find them gone: the default action, so none is left waiting.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _write_shard_in_worker(args) -> dict[str, Any]:
    config, shard, work = args
    return write_shard(config, shard, work, on_episode=lambda: _progress_queue.put(1))


def read_done(shard: Shard, work: Path) -> dict[str, Any] | None:
    marker = shard.path(work) / "DONE.json"
    return json.loads(marker.read_text()) if marker.is_file() else None


def record_shards(config: DataConfig, shards: list[Shard], work: Path, advance) -> None:
    """Write the given shards, in worker processes when there are several workers."""
    workers = min(config.num_workers(), len(shards))
    if workers <= 1:
        for shard in shards:
            write_shard(config, shard, work, on_episode=lambda: advance(1))
        return
    context = mp.get_context("fork")
    queue = context.SimpleQueue()
    with context.Pool(workers, initializer=_init_worker, initargs=(queue,)) as pool:
        pending = pool.map_async(_write_shard_in_worker, [(config, s, work) for s in shards], chunksize=1)
        while not pending.ready():
            pending.wait(0.2)
            while not queue.empty():
                advance(queue.get())
        pending.get()  # re-raises a worker's exception
        while not queue.empty():
            advance(queue.get())
        # Let the idle workers exit on their own before the with-block's terminate(): a measured 200-episode run
        # otherwise hung after its last shard, the parent waiting on a worker that waited on the task queue.
        pool.close()
        pool.join()


# -- merging ---------------------------------------------------------------------------------------------
def merge_split(config: DataConfig, split: Split, shards: list[Shard], work: Path, out: Path) -> list[dict]:
    """Merge the split's finished shards, in order, into ``out/<split>`` (and its actions twin)."""
    from lerobot.datasets.aggregate import aggregate_datasets  # after _silence_encoders' environment

    _silence_encoders()
    mine = sorted((s for s in shards if s.split == split.name), key=lambda s: s.number)
    records = [r for s in mine for r in read_done(s, work)["episodes"]]
    for role, name in dataset_dirs(config.kind, split.name).items():
        target = out / name
        if target.exists():
            shutil.rmtree(target)  # a merge cut short by an interruption: redo it
        aggregate_datasets(
            repo_ids=[f"dojo/{s.split}-{s.number}-{role}" for s in mine],
            aggr_repo_id=f"dojo/{name}",
            roots=[s.path(work) / role for s in mine],
            aggr_root=target,
        )
        write_json(
            target / DOJO_META_FILE,
            {
                "kind": config.kind,
                "role": role,
                "split": split.name,
                "task": config.task if config.kind != "human" else None,
                "policies": list(config.policy_names()),
                "config": asdict(config),
                "episodes": records,
            },
        )
    return records
