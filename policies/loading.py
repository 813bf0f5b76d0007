"""Load LeRobot ``pretrained_model`` folders through lerobot's own API, offline, with one-line errors.

A folder holds ``config.json`` (the policy config, ``"type"`` names the policy class), ``model.safetensors``
(weights) and the processor files (``policy_preprocessor.json``, ``policy_postprocessor.json`` and their
safetensors state, e.g. normalisation stats). Everything read is JSON or safetensors; nothing is unpickled.

Before handing a folder to lerobot the files are checked here, because lerobot's own failures on bad input
are stack traces, or worse silent: ``from_pretrained`` defaults to ``strict=False`` and would leave missing
weights at their random initialisation. We load with ``strict=True``.

``LoadedPolicy`` bundles the policy with its processors so callers speak real units: observations as the env
gives them (``observation.image`` float in [0, 1], ``observation.state`` in arena pixels) in, actions in arena
pixels out.

Two ways to ask for actions:

- ``act`` / ``observe``: a rollout, exactly as lerobot's own evaluation loop (``lerobot_eval.rollout``: one
  ``select_action`` per env step) would run it. ``act(observation)`` returns every action the policy has committed
  to from that observation (the rest of its action queue: ``n_action_steps`` of Diffusion Policy or ACT, a single
  action under ACT's temporal ensembling), so a world can execute them as one chunk; ``observe(observation)`` then
  hands it the observation after each executed action but the last, which lerobot's ``select_action`` would have
  seen (a Diffusion Policy stacks the last ``n_obs_steps`` of them; the action it pops must be the one executed, or
  the call fails). Policies whose ``select_action`` is a plain queue over a chunk predicted from the current
  observation alone (``dojo_pixel``, ACT without temporal ensembling) need no ``observe``
  (``needs_every_observation`` is False) and ``act`` is ``predict_chunk``.
- ``predict_chunk``: a proposal for a planner, which leaves the policy's state as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.processor import PolicyProcessorPipeline
from lerobot.utils.constants import POLICY_POSTPROCESSOR_DEFAULT_NAME, POLICY_PREPROCESSOR_DEFAULT_NAME
from safetensors import safe_open
from torch import Tensor

import policies.pixel_policy  # noqa: F401  (registers the "dojo_pixel" type with lerobot)
from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import ACTION
from dojo_bench.core.manifest import sha256_of_file

TRAINING_FILE = (
    "training.json"  # beside a policy `dojo-bench train stage=policy` saved: provenance, resume record
)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = f"{POLICY_PREPROCESSOR_DEFAULT_NAME}.json"
POSTPROCESSOR_FILE = f"{POLICY_POSTPROCESSOR_DEFAULT_NAME}.json"

# lerobot policy types whose action chunks are samples (diffusion, flow matching), not point estimates.
STOCHASTIC_TYPES = frozenset({"diffusion", "pi0", "pi05", "pi0_fast", "smolvla", "groot", "xvla", "wall_x"})
# Types whose select_action (read in lerobot 0.4.4) queues the first n_action_steps of a chunk predicted from the
# current observation alone, when n_obs_steps is 1 and there is no temporal ensembling: predicting that chunk at
# the first step and executing it is the same rollout. Every other type is driven step by step (act / observe).
PLAIN_CHUNK_TYPES = frozenset({"dojo_pixel", "act"})


def _one_line(error: BaseException, limit: int = 240) -> str:
    """The error as one line; the innermost cause is what names the problem (draccus wraps its errors)."""
    root = error
    while (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__
    text = " ".join(str(root).split()) or type(root).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class LoadedPolicy:
    """A loaded checkpoint: the lerobot policy (eval mode) with its pre- and postprocessor.

    path: the ``pretrained_model`` folder; name: a label for tables (the folder name, or its parent's name when
    the folder is lerobot's ``.../checkpoints/NNN/pretrained_model``); checkpoint_hash: sha256 of the weights.
    """

    path: Path
    name: str
    policy: PreTrainedPolicy
    preprocessor: PolicyProcessorPipeline
    postprocessor: PolicyProcessorPipeline
    checkpoint_hash: str
    _committed: deque[Tensor] = field(default_factory=deque, repr=False)  # queued actions act() handed out

    @property
    def config(self) -> PreTrainedConfig:
        return self.policy.config

    @property
    def policy_type(self) -> str:
        return self.config.type

    @property
    def action_dim(self) -> int:
        return self.config.output_features[ACTION].shape[0]

    @property
    def chunk_size(self) -> int:
        """Actions executed per prediction (lerobot's ``n_action_steps``)."""
        return int(getattr(self.config, "n_action_steps", 1))

    @property
    def stochastic(self) -> bool:
        """True when two predictions from the same observation can differ (sampling policies, noisy variants)."""
        if self.policy_type in STOCHASTIC_TYPES:
            return True
        return float(getattr(self.config, "inference_noise_std", 0.0)) > 0

    @property
    def needs_every_observation(self) -> bool:
        """True when lerobot's ``select_action`` must see the observation after every action: the policy keeps an
        observation history (``n_obs_steps`` > 1), ensembles overlapping chunks (ACT's ``temporal_ensemble_coeff``)
        or is a type not known to be a plain chunk queue (``PLAIN_CHUNK_TYPES``)."""
        config = self.config
        plain = (
            config.type in PLAIN_CHUNK_TYPES
            and int(getattr(config, "n_obs_steps", 1)) == 1
            and getattr(config, "temporal_ensemble_coeff", None) is None
        )
        return not plain

    @property
    def device(self) -> torch.device:
        return next(self.policy.parameters()).device

    def reset(self) -> None:
        """Start an episode: lerobot's ``reset`` (queues, ensembler) and nothing committed."""
        self.policy.reset()
        self._committed = deque()

    @torch.no_grad()
    def act(self, observation: dict[str, Any]) -> Tensor:
        """Env observation (B, ...) -> the actions committed from it (B, K, action_dim), env units, CPU; K >= 1.

        The first is what lerobot's ``select_action`` returns for this observation, the others what it would
        return, in order, for the next K - 1 observations (its queued actions); hand those observations to
        ``observe`` before the next ``act``."""
        if not self.needs_every_observation:
            return self.predict_chunk(observation)
        first = self._select(observation)  # (B, A), normalised
        self._committed = deque(_queued_actions(self.policy))  # K - 1 x (B, A)
        return self.postprocessor(torch.stack([first, *self._committed], dim=1))

    @torch.no_grad()
    def observe(self, observation: dict[str, Any]) -> None:
        """The observation after an executed action that ``act`` committed to (all but the last of its chunk):
        lerobot's ``select_action`` sees it (observation history), and pops the action that was executed."""
        if not self.needs_every_observation:
            return
        if not self._committed:
            raise DojoError(f"policy {self.name}: observe() without a committed action (call act() first)")
        self._select(observation)

    def _select(self, observation: dict[str, Any]) -> Tensor:
        """lerobot's ``select_action`` on the env observation (normalised (B, A) out); when actions are committed
        (a chunk cut short by the world), the one it pops must be the next of them, or the call fails."""
        action = self.policy.select_action(self.preprocessor(dict(observation)))
        if self._committed and not torch.equal(action, self._committed.popleft()):
            raise DojoError(
                f"policy {self.name} ({self.policy_type}): select_action did not return its queued action; "
                "its action queue is not the one dojo-bench reads"
            )
        return action

    @torch.no_grad()
    def select_action(self, observation: dict[str, Any]) -> Tensor:
        """Env observation (batched or not) -> next action (B, action_dim) in env units, on the CPU."""
        batch = self.preprocessor(dict(observation))
        return self.postprocessor(self.policy.select_action(batch))

    @torch.no_grad()
    def predict_chunk(self, observation: dict[str, Any], noise: Tensor | None = None) -> Tensor:
        """Env observation -> the next ``chunk_size`` actions (B, chunk_size, action_dim) in env units, CPU.

        A proposal, not a step: the policy's state (queued actions, observation history) is the same after
        the call as before, so a planner can ask several times from one observation.
        """
        batch = self.preprocessor(dict(observation))
        kwargs = {} if noise is None else {"noise": noise}
        if hasattr(self.policy, "_queues"):  # lerobot's history-keeping policies
            chunk = self._peek_history_policy(batch, kwargs)
        else:
            chunk = self.policy.predict_action_chunk(batch, **kwargs)[:, : self.chunk_size]
        return self.postprocessor(chunk)

    @torch.no_grad()
    def remember(self, observation: dict[str, Any]) -> None:
        """Add an observation to the history a lerobot policy with ``_queues`` predicts from (a Diffusion Policy's
        last ``n_obs_steps``), without predicting and without touching its queued actions: what a planner calls
        with each observation of the episode, so its proposals see what lerobot's loop would have shown. Other
        policies keep no history: nothing to do."""
        policy = self.policy
        queues = getattr(policy, "_queues", None)
        if queues is None or ACTION not in queues:
            return
        batch = self.preprocessor(dict(observation))
        saved = deque(queues[ACTION], maxlen=queues[ACTION].maxlen)
        size = next(v for v in batch.values() if isinstance(v, Tensor)).shape[0]  # B
        placeholder = torch.zeros(size, self.action_dim, device=self.device)
        try:
            queues[ACTION].clear()
            queues[ACTION].append(
                placeholder
            )  # select_action then fills the history and pops this, no inference
            policy.select_action(dict(batch))
        finally:
            policy._queues[ACTION] = saved

    def _peek_history_policy(self, batch: dict[str, Tensor], kwargs: dict[str, Tensor]) -> Tensor:
        """Chunk from a lerobot policy that keeps ``_queues`` (diffusion, vqbet, pi0, ...).

        Their ``predict_action_chunk`` reads the observation history that only ``select_action`` fills (with the
        current frame, or copies of it at an episode start), so run ``select_action`` on an empty action queue
        and put every queue back afterwards.
        """
        policy = self.policy
        if policy._queues is None:
            policy.reset()
        if ACTION not in policy._queues:
            return policy.predict_action_chunk(batch, **kwargs)[:, : self.chunk_size]
        saved = {key: deque(queue, maxlen=queue.maxlen) for key, queue in policy._queues.items()}
        try:
            policy._queues[ACTION].clear()
            first = policy.select_action(dict(batch), **kwargs)  # (B, A)
            rest = list(policy._queues[ACTION])  # n_action_steps - 1 x (B, A)
        finally:
            policy._queues = saved
        return torch.stack([first, *rest], dim=1)[:, : self.chunk_size]


def _queued_actions(policy: PreTrainedPolicy) -> list[Tensor]:
    """The actions a lerobot policy has queued for the next steps (each (B, A)), oldest first: ``_queues[ACTION]``
    (diffusion, vqbet, ...) or ``_action_queue`` (act, pi0, ...); none under temporal ensembling."""
    queues = getattr(policy, "_queues", None)
    if isinstance(queues, dict) and ACTION in queues:
        return list(queues[ACTION])
    queue = getattr(policy, "_action_queue", None)
    return list(queue) if queue is not None else []


def checkpoint_hash(path: str | Path) -> str:
    """sha256 (hex) of a checkpoint's weights: ``model.safetensors`` inside a folder, or the file itself."""
    path = Path(path)
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    if not weights.is_file():
        raise DojoError(f"policy checkpoint {path}: {WEIGHTS_FILE} is missing")
    return sha256_of_file(weights)


def check_action_dim(policy: LoadedPolicy | PreTrainedPolicy, expected: int) -> None:
    """Refuse a policy whose actions do not have ``expected`` dimensions (e.g. the world model's)."""
    config = policy.config
    actual = config.output_features[ACTION].shape[0]
    if actual != expected:
        name = policy.name if isinstance(policy, LoadedPolicy) else config.type
        raise DojoError(f"policy {name} outputs {actual}-d actions but {expected}-d actions are expected")


def _renamed(policy: LoadedPolicy, key: str) -> str:
    """``key`` as the policy's preprocessor renames it (lerobot's ``rename_observations_processor``)."""
    for step in getattr(policy.preprocessor, "steps", []):
        rename_map = getattr(step, "rename_map", None)
        if isinstance(rename_map, dict):
            key = rename_map.get(key, key)
    return key


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_observation_features(policy: LoadedPolicy, given: dict[str, tuple[int, ...]], source: str) -> None:
    """Refuse (one line) a policy whose inputs the observations do not hold: a key it reads that ``given`` lacks
    (after its preprocessor's renames), or the same key with another shape.

    ``given``: {key: shape} of the observation as the policy receives it (images (C, H, W)); ``source`` names it
    in the message (e.g. "the dojo")."""
    offered = {_renamed(policy, key): tuple(shape) for key, shape in given.items()}
    described = ", ".join(f"{key} {_shape(shape)}" for key, shape in offered.items())
    for key, feature in (policy.config.input_features or {}).items():
        expected = tuple(int(d) for d in feature.shape)
        if key not in offered:
            raise DojoError(
                f"policy {policy.name} ({policy.path}) reads {key} {_shape(expected)} but {source} gives "
                f"{described}"
            )
        if offered[key] != expected:
            raise DojoError(
                f"policy {policy.name} ({policy.path}) reads {key} of shape {_shape(expected)} but {source} gives "
                f"{key} of shape {_shape(offered[key])}"
            )


def _checkpoint_name(path: Path) -> str:
    return path.parent.name if path.name == "pretrained_model" and path.parent.name else path.name


def _read_config(path: Path) -> PreTrainedConfig:
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise DojoError(f"policy checkpoint {path}: {CONFIG_FILE} is missing")
    try:
        raw = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DojoError(
            f"policy checkpoint {path}: {CONFIG_FILE} is not valid JSON ({_one_line(error)})"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise DojoError(f'policy checkpoint {path}: {CONFIG_FILE} has no policy "type"')
    policy_type = raw["type"]
    known = sorted(PreTrainedConfig.get_known_choices())
    if policy_type not in known:
        raise DojoError(
            f"policy checkpoint {path}: policy type {policy_type!r} is not known to lerobot (known: {', '.join(known)})"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return PreTrainedConfig.from_pretrained(path)
    except Exception as error:  # draccus reports bad fields as various exception types
        raise DojoError(
            f"policy checkpoint {path}: {CONFIG_FILE} is not a valid {policy_type!r} config ({_one_line(error)})"
        ) from None


def _check_weights(path: Path) -> None:
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise DojoError(f"policy checkpoint {path}: {WEIGHTS_FILE} is missing")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            for key in handle.keys():
                handle.get_slice(key)
    except Exception as error:
        raise DojoError(f"policy checkpoint {path}: {WEIGHTS_FILE} is corrupt ({_one_line(error)})") from None


def _device_overrides(pipeline_file: Path, device: str) -> dict[str, dict[str, str]]:
    """Processor overrides that put a pipeline's device step on ``device``.

    A checkpoint trained on a GPU saves ``"device": "cuda"`` in its device step; loading it on a laptop must
    not follow that. lerobot refuses overrides for steps a pipeline lacks, hence the look at the file first.
    """
    try:
        steps = json.loads(pipeline_file.read_text()).get("steps", [])
        names = {step.get("registry_name") for step in steps if isinstance(step, dict)}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return {}  # lerobot's loader reports the broken file
    return {"device_processor": {"device": device}} if "device_processor" in names else {}


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> LoadedPolicy:
    """Load a lerobot ``pretrained_model`` folder onto ``device``, in eval mode, with its processors.

    Raises DojoError (one line) for a missing folder, a missing or corrupt config.json or model.safetensors,
    an unknown policy type, weights that do not fit the config, and missing or unreadable processor files.
    """
    path = Path(path)
    if not path.is_dir():
        raise DojoError(f"policy checkpoint {path}: no such folder")
    config = _read_config(path)
    _check_weights(path)
    for name in (PREPROCESSOR_FILE, POSTPROCESSOR_FILE):
        if not (path / name).is_file():
            raise DojoError(f"policy checkpoint {path}: processor file {name} is missing")

    device = str(device)
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise DojoError(f"policy checkpoint {path}: device {device!r} requested but CUDA is not available")
    config.device = device
    try:
        policy_class = get_policy_class(config.type)
    except Exception as error:
        raise DojoError(
            f"policy checkpoint {path}: lerobot has no policy class for {config.type!r} ({_one_line(error)})"
        ) from None
    try:
        with contextlib.redirect_stdout(
            io.StringIO()
        ):  # lerobot prints "Loading weights from local directory"
            policy = policy_class.from_pretrained(path, config=config, strict=True, local_files_only=True)
    except Exception as error:
        raise DojoError(
            f"policy checkpoint {path}: {WEIGHTS_FILE} does not fit its config ({_one_line(error)})"
        ) from None

    try:
        preprocessor, postprocessor = make_pre_post_processors(
            config,
            pretrained_path=str(path),
            preprocessor_overrides=_device_overrides(path / PREPROCESSOR_FILE, device),
            postprocessor_overrides=_device_overrides(path / POSTPROCESSOR_FILE, "cpu"),
        )
    except Exception as error:
        raise DojoError(
            f"policy checkpoint {path}: cannot read its processor files ({_one_line(error)})"
        ) from None

    policy.reset()
    return LoadedPolicy(
        path=path,
        name=_checkpoint_name(path),
        policy=policy,
        preprocessor=preprocessor,
        postprocessor=postprocessor,
        checkpoint_hash=checkpoint_hash(path),
    )


def save_pretrained_model(
    policy: PreTrainedPolicy,
    preprocessor: PolicyProcessorPipeline,
    postprocessor: PolicyProcessorPipeline,
    path: str | Path,
) -> Path:
    """Write a lerobot ``pretrained_model`` folder (config, weights, processors), as lerobot's trainer does."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(path)
    preprocessor.save_pretrained(path)
    postprocessor.save_pretrained(path)
    return path


__all__ = [
    "LoadedPolicy",
    "check_action_dim",
    "check_observation_features",
    "checkpoint_hash",
    "load_policy",
    "save_pretrained_model",
]
