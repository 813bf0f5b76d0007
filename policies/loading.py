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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections import deque
from dataclasses import dataclass
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

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = f"{POLICY_PREPROCESSOR_DEFAULT_NAME}.json"
POSTPROCESSOR_FILE = f"{POLICY_POSTPROCESSOR_DEFAULT_NAME}.json"

# lerobot policy types whose action chunks are samples (diffusion, flow matching), not point estimates.
STOCHASTIC_TYPES = frozenset({"diffusion", "pi0", "pi05", "pi0_fast", "smolvla", "groot", "xvla", "wall_x"})


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
    def device(self) -> torch.device:
        return next(self.policy.parameters()).device

    def reset(self) -> None:
        self.policy.reset()

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


def checkpoint_hash(path: str | Path) -> str:
    """sha256 (hex) of a checkpoint's weights: ``model.safetensors`` inside a folder, or the file itself."""
    path = Path(path)
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    if not weights.is_file():
        raise DojoError(f"policy checkpoint {path}: {WEIGHTS_FILE} is missing")
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_action_dim(policy: LoadedPolicy | PreTrainedPolicy, expected: int) -> None:
    """Refuse a policy whose actions do not have ``expected`` dimensions (e.g. the world model's)."""
    config = policy.config
    actual = config.output_features[ACTION].shape[0]
    if actual != expected:
        name = policy.name if isinstance(policy, LoadedPolicy) else config.type
        raise DojoError(f"policy {name} outputs {actual}-d actions but {expected}-d actions are expected")


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
    "checkpoint_hash",
    "load_policy",
    "save_pretrained_model",
]
