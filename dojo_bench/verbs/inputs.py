"""The inputs that ``evaluate`` and ``plan`` share: policy checkpoints with their labels, the imagined env of a
world-model release (or the dojo itself as the reference world), the value model, and the run directory opened
only once they load."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dojo_bench.core.devices import resolve_device
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from dojo_bench.core.manifest import content_hash, file_hashes
from dojo_bench.core.run_dir import prepare_run_dir
from dojo_bench.dojo.tasks import TaskSpec, get_task
from dojo_bench.engine.rollout import check_policy_fits_world
from dojo_bench.shipped import shipped_calibration
from dojo_bench.value.value_model import load_value_model
from policies.loading import TRAINING_FILE, check_action_dim, check_observation_features, load_policy
from world_model.checkpoint import CheckpointError, release_resume
from world_model.imagined_env import ImaginedEnv
from world_model.pixel_env import PixelImaginedEnv, is_pixel_release
from world_model.sampler import SamplerConfig

INPUTS_DIR = "inputs"
CALIBRATION_FILE = (
    "calibration.json"  # written by `dojo-bench calibrate` (verbs/calibrate.py), one is shipped
)
# What evaluate and plan take to build inputs for size=tiny without any (verbs/tiny.py): (their out/inputs folder)
# -> (policy checkpoints, world model, value model).
TinyInputs = Callable[[Path], tuple[list[str], str, str]]
# What wm-eval takes for size=tiny without release=: (its out folder) -> (a release, the datasets it was trained on).
TinyModel = Callable[[Path], tuple[Path, list[str]]]
REFERENCE_WORLD = (
    "dojo"  # world_model=dojo: the state-space reference (the simulator itself, value-model scored)
)


@dataclass
class ReferenceSampler:
    method: str = "dojo_simulator"
    num_steps: int = 0


class ReferenceEnv:
    """What ``world_model=dojo`` loads: the face of an imagined env for the checks; the episodes run in
    ``rollout.ReferenceWorld``."""

    action_dim = state_dim = 2
    chunk_size = 1
    image_size = 96

    def __init__(self) -> None:
        self.sampler = type("Sampler", (), {"cfg": ReferenceSampler()})()


def policy_labels(paths: list[str]) -> list[str]:
    """Unique labels from checkpoint folders: the folder name (its parent's for ``.../pretrained_model``), with
    more parent folders joined by '/' until no two labels are the same. lerobot-train's layout
    ``RUN/checkpoints/STEP/pretrained_model`` is labelled ``RUN/STEP`` (e.g. ``lerobot_act/003000``), not by the
    step number alone."""
    parts = []
    for path in paths:
        p = Path(path).expanduser().resolve()
        names = [n for n in p.parts if n != p.anchor]
        if names and names[-1] == "pretrained_model" and len(names) > 1:
            names = names[:-1]
        if len(names) > 2 and names[-2] == "checkpoints":  # lerobot-train: RUN/checkpoints/STEP
            names = names[:-3] + [f"{names[-3]}/{names[-1]}"]
        parts.append(names)
    depth = 1
    while True:
        labels = ["/".join(n[-depth:]) for n in parts]
        if len(set(labels)) == len(labels) or depth > max(len(n) for n in parts):
            break
        depth += 1
    if len(set(labels)) != len(labels):
        raise UsageError(f"policies= lists the same checkpoint twice: {paths}")
    return labels


def load_env(release: str | Path, device: str, sampler: dict[str, Any], seed: int, key: str = "release"):
    """``ImaginedEnv`` of the release; checkpoint problems become one DojoError line (naming the verb's ``key``)."""
    try:
        if not Path(release).is_dir():
            raise CheckpointError(f"{key}={release} does not exist or is not a directory")
        if is_pixel_release(release):
            if sampler:
                raise CheckpointError(
                    f"{release} is the pixel world model: it predicts in one pass, sampler settings do not apply"
                )
            return PixelImaginedEnv.from_checkpoint(release, device=device, seed=seed)
        env = ImaginedEnv.from_checkpoint(release, device=device, seed=seed)
        if sampler:
            env.sampler = type(env.sampler)(SamplerConfig(**{**asdict(env.model.cfg.sampler), **sampler}))
    except (CheckpointError, TypeError, ValueError) as error:
        raise DojoError(str(error)) from None
    return env


def read_calibration(path: str | Path) -> dict[str, Any]:
    """A calibration (a `dojo-bench calibrate` out dir or its calibration.json); one DojoError line if unusable."""
    given = Path(path).expanduser()
    file = given / CALIBRATION_FILE if given.is_dir() else given
    if not file.is_file():
        raise DojoError(
            f"calibration={path} holds no {CALIBRATION_FILE} (`dojo-bench calibrate out=DIR` writes one)"
        )
    try:
        data = json.loads(file.read_text())
        threshold = float(data["success_threshold"])
        for name in ("world_model", "value_model"):
            dict(data[name]["files"])
    except (ValueError, KeyError, TypeError):
        raise DojoError(f"{file} is not a calibration written by `dojo-bench calibrate`") from None
    if not 0 < threshold <= 1:
        raise DojoError(f"{file}: success_threshold must be in (0, 1], got {threshold}")
    return data


def calibration_fits(calibration: dict[str, Any], world_model: str | Path, value_model: str | Path) -> bool:
    """Whether ``calibration`` was fitted for exactly these two models' files (sha256)."""
    return all(
        Path(path).is_dir() and file_hashes(Path(path)) == calibration[name]["files"]
        for name, path in (("world_model", world_model), ("value_model", value_model))
    )


def success_threshold(
    given: float | None,
    calibration: str | None,
    task: TaskSpec,
    world_model: str | None,
    value_model: str | None,
) -> tuple[float, str]:
    """Imagined success's threshold on value-model progress and where it comes from: ``success_threshold=``;
    ``calibration=`` (refused for other models); the shipped calibration when both models are the ones it was
    fitted for; else the task's own threshold (and always for world_model=dojo, the simulator itself)."""
    if given is not None:
        return given, "given as success_threshold="
    if world_model is None or value_model is None or world_model == REFERENCE_WORLD:
        if calibration is not None and world_model == REFERENCE_WORLD:
            raise UsageError(
                "calibration= fits a learned world model; world_model=dojo uses the task's threshold"
            )
        if calibration is not None:
            raise UsageError("calibration= needs the world_model= and value_model= it was fitted for")
        return task.success_threshold, "the task threshold"
    if calibration is not None:
        data = read_calibration(calibration)
        if not calibration_fits(data, world_model, value_model):
            raise DojoError(
                f"calibration={calibration} was fitted for other models ({data['world_model'].get('path')}, "
                f"{data['value_model'].get('path')}); run `dojo-bench calibrate` for these"
            )
        return float(data["success_threshold"]), f"calibrated: {calibration}"
    shipped = shipped_calibration()
    if shipped is not None and calibration_fits(shipped, world_model, value_model):
        return float(shipped["success_threshold"]), "calibrated for the shipped models"
    return task.success_threshold, "the task threshold"


def observation_features(env) -> dict[str, tuple[int, ...]]:
    """{key: shape} of what a policy is shown, in both worlds (the imagined env speaks the real one's keys):
    ``observation.image`` (3, H, W) float in [0, 1], ``observation.state`` (S,)."""
    size = int(env.image_size)
    return {OBS_IMAGE: (3, size, size), OBS_STATE: (int(getattr(env, "state_dim", 2)),)}


def resumed_training(
    world_model: str | Path, value_model: str | Path, policies: list[str] = ()
) -> dict[str, dict[str, Any]]:
    """The models whose training (or a model they were trained from) was resumed mid-way, and so is not
    bit-identical to an uninterrupted run's (their release's ``extra.training.resume``; a policy's
    ``training.json``, written by `dojo-bench train stage=policy`), by key; empty when none."""
    found = {}
    for key, path in (("world_model", world_model), ("value_model", value_model)):
        record = release_resume(path) if path != REFERENCE_WORLD else {}
        if record.get("bit_identical") is False:
            found[key] = {"path": str(path), **record}
    for label, path in zip(policy_labels(policies), policies, strict=True):
        record = policy_resume(path)
        if record.get("bit_identical") is False:
            found[f"policy {label}"] = {"path": str(path), **record}
    return found


def policy_resume(folder: str | Path) -> dict[str, Any]:
    """The resume record of a policy folder's ``training.json``; empty when it has none (lerobot's own
    checkpoints, the shipped zoo)."""
    try:
        record = json.loads((Path(folder) / TRAINING_FILE).read_text())["resume"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return record if isinstance(record, dict) else {}


def load_inputs(cfg, policies: list[str], world_model: str, value_model: str, device: str):
    """(loaded policies by label, imagined env, value model); every problem is one DojoError line."""
    env = (
        ReferenceEnv()
        if world_model == REFERENCE_WORLD
        else load_env(world_model, device, cfg.sampler, cfg.seed, key="world_model")
    )
    value = load_value_model(value_model, device)
    labels = policy_labels(policies)
    loaded = {}
    for label, path in zip(labels, policies, strict=True):
        policy = load_policy(path, device)
        policy.name = label
        try:
            check_action_dim(policy, env.action_dim)
        except DojoError:
            raise DojoError(
                f"policy {label} ({path}) outputs {policy.action_dim}-d actions but the world model "
                f"{world_model} takes {env.action_dim}-d actions"
            ) from None
        check_observation_features(policy, observation_features(env), "the dojo")
        check_policy_fits_world(policy, int(env.chunk_size), f"the world model {world_model}")
        loaded[label] = policy
    return loaded, env, value


def run_settings(cfg) -> tuple[TaskSpec, str, int, list[int]]:
    """(task, resolved device, steps per episode, seeds) of an evaluate or plan config."""
    task = get_task(cfg.task)
    return (
        task,
        resolve_device(cfg.device),
        cfg.max_steps or task.horizon,
        list(range(cfg.seed, cfg.seed + cfg.seeds)),
    )


def input_hashes(cfg, neutral: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What a run's model and checkpoint paths hold (``core.manifest.content_hash``), for its run dir's identity:
    the same models moved, or the shipped defaults installed elsewhere, resume the run; other weights at the same
    path are refused. ``world_model=dojo`` (no path) stays as it is; neutral keys are not hashed."""

    def held(path: str) -> str:
        return content_hash(path) if Path(path).exists() else path

    hashes: dict[str, Any] = {name: held(getattr(cfg, name)) for name in ("world_model", "value_model")}
    if "policies" not in neutral:
        hashes["policies"] = [held(path) for path in cfg.policies]
    return hashes


def open_run(
    cfg,
    verb: str,
    overwrite: bool,
    tiny_inputs: TinyInputs | None,
    device: str,
    check: Callable[[dict, Any], Any],
    neutral: frozenset[str] = frozenset(),
    reopen_finished: bool = False,
):
    """Load a run's policies, world model and value model and open its out dir, checking the inputs first.

    Given inputs are loaded, and ``check(loaded policies, env)`` run, before ``out`` is written, so bad input leaves
    no half-made run; size=tiny without inputs builds tiny ones under ``out/inputs`` first, with ``tiny_inputs``
    (verbs/tiny.py). ``neutral`` and ``reopen_finished`` go to ``prepare_run_dir``. Returns (run dir, (policy
    paths, world model, value model), (loaded policies, imagined env, value model), check's result)."""
    paths = (cfg.policies, cfg.world_model, cfg.value_model)
    given = all(paths)
    if given:
        models = load_inputs(cfg, *paths, device)
        checked = check(models[0], models[1])
    elif cfg.preset != "tiny" or tiny_inputs is None:
        raise UsageError("policies=, world_model= and value_model= are required")
    identity = input_hashes(cfg, neutral) if given else None
    run = prepare_run_dir(cfg.out, verb, asdict(cfg), overwrite, neutral, reopen_finished, identity)
    if not given:
        paths = tiny_inputs(run.path / INPUTS_DIR)
        models = load_inputs(cfg, *paths, device)
        checked = check(models[0], models[1])
    return run, paths, models, checked
