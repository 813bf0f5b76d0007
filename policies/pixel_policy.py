"""The project's own small pixel policy, in LeRobot's format (type ``dojo_pixel``).

Contract: one 96x96 RGB frame (``observation.image``, float in [0, 1], (B, 3, H, W)) and the agent position
(``observation.state``, (B, 2)) -> a chunk of ``chunk_size`` 2-D target positions (``action``, (B, chunk_size, 2)),
of which ``select_action`` executes the first ``n_action_steps`` before predicting again.

The network is ours and small: a strided conv encoder (no pretrained backbone, nothing to download), the
state concatenated to the image features, and an MLP head that regresses the whole chunk. Training is plain
behaviour cloning (MSE or L1 over the non-padded steps of the chunk).

Normalisation lives in lerobot's processor pipelines, not in the model: ``make_dojo_pixel_pre_post_processors``
builds a preprocessor (batch dim, device, ``NormalizerProcessorStep``) and a postprocessor
(``UnnormalizerProcessorStep``, back to CPU) from the dataset stats, and their ``save_pretrained`` writes
``policy_preprocessor.json`` / ``policy_postprocessor.json`` plus the stats as safetensors next to
``config.json`` and ``model.safetensors``. That is the layout every lerobot >= 0.4 checkpoint has, so the same
loader (``policies.loading``) reads our checkpoints and lerobot's alike, and lerobot's own
``make_pre_post_processors(config, pretrained_path=...)`` finds ours too. The model therefore sees and
produces normalised tensors: state and action scaled to [-1, 1] by min/max (the arena is 0-512 px), images
left in [0, 1] by the processor and centred inside the model (a fixed affine map, no stats needed).

The class names follow lerobot's plugin convention (``XConfig`` / ``XPolicy`` / ``make_<type>_pre_post_processors``
in one importable module), so ``lerobot.policies.factory.get_policy_class("dojo_pixel")`` and
``make_pre_post_processors`` resolve them once this module has been imported (importing ``policies.loading``
does it).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot.optim.optimizers import AdamWConfig
from lerobot.optim.schedulers import CosineDecayWithWarmupSchedulerConfig
from lerobot.policies.diffusion.modeling_diffusion import SpatialSoftmax
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.processor import (
    AddBatchDimensionProcessorStep,
    DeviceProcessorStep,
    NormalizerProcessorStep,
    PolicyAction,
    PolicyProcessorPipeline,
    UnnormalizerProcessorStep,
)
from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action
from lerobot.utils.constants import POLICY_POSTPROCESSOR_DEFAULT_NAME, POLICY_PREPROCESSOR_DEFAULT_NAME
from torch import Tensor, nn

from dojo_bench.core.encoders import make_conv_stack
from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE

POLICY_TYPE = "dojo_pixel"
ENCODERS = ("flat", "keypoints")
LR_SCHEDULES = ("constant", "cosine")


def _default_inputs() -> dict[str, PolicyFeature]:
    return {
        OBS_IMAGE: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 96, 96)),
        OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(2,)),
    }


def _default_outputs() -> dict[str, PolicyFeature]:
    return {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(2,))}


@PreTrainedConfig.register_subclass(POLICY_TYPE)
@dataclass
class PixelConfig(PreTrainedConfig):
    """Configuration of ``PixelPolicy``; saved as ``config.json`` with ``"type": "dojo_pixel"``.

    chunk_size: actions predicted per forward pass; n_action_steps: how many of them run before re-planning.
    channels: output channels of the stride-2 conv layers (96 px -> 96 / 2**len(channels) px feature map).
    inference_noise_std: Gaussian noise (in normalised action units) added to predicted chunks at inference;
        0 makes the policy deterministic, > 0 makes a stochastic variant (ensembles draw several proposals).
    num_modes: chunk hypotheses the head predicts (multiple-choice learning). 1 is plain regression, which
        averages the expert's alternatives (walk round the object to the left or to the right) into standing
        still; with K > 1 only the hypothesis nearest the demonstration is trained, a classifier learns which
        one that is, and inference executes the classifier's choice.
    encoder: "flat" flattens the last feature map into a linear layer; "keypoints" turns it into
        ``num_keypoints`` expected (x, y) positions with lerobot's ``SpatialSoftmax`` (as Diffusion Policy does),
        which keeps sub-cell precision about where the object and the agent are.
    lr_schedule: "constant", or "cosine" (linear warm-up over ``lr_warmup_steps``, then cosine decay to
        ``optimizer_lr * lr_final_ratio`` at ``lr_decay_steps``; the policy stage sets it to max_steps when 0).
    ema_decay: 0 trains and saves the raw weights; in (0, 1) the saved weights are an exponential moving
        average of them (torch's ``AveragedModel``), which smooths the checkpoint-to-checkpoint swing.
    """

    n_obs_steps: int = 1
    chunk_size: int = 8
    n_action_steps: int = 8
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden_dim: int = 256
    loss: str = "mse"
    inference_noise_std: float = 0.0
    num_modes: int = 1
    mode_loss_weight: float = 0.1  # weight of the classifier's cross-entropy (num_modes > 1)
    random_shift: int = 0  # training only: shift images by up to this many pixels (edge-padded random crop)
    encoder: str = "flat"
    num_keypoints: int = 32  # encoder="keypoints" only

    input_features: dict[str, PolicyFeature] | None = field(default_factory=_default_inputs)
    output_features: dict[str, PolicyFeature] | None = field(default_factory=_default_outputs)
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MIN_MAX,
        }
    )

    optimizer_lr: float = 1e-3
    optimizer_weight_decay: float = 1e-6
    lr_schedule: str = "constant"
    lr_warmup_steps: int = 500
    lr_decay_steps: int = 0
    lr_final_ratio: float = 0.01
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_obs_steps != 1:
            raise ValueError(f"dojo_pixel reads one frame: n_obs_steps must be 1, got {self.n_obs_steps}")
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(
                f"n_action_steps ({self.n_action_steps}) must be between 1 and chunk_size ({self.chunk_size})"
            )
        if self.loss not in ("mse", "l1"):
            raise ValueError(f"loss must be 'mse' or 'l1', got {self.loss!r}")
        if self.inference_noise_std < 0:
            raise ValueError(f"inference_noise_std must be >= 0, got {self.inference_noise_std}")
        if not self.channels:
            raise ValueError("channels must name at least one conv layer")
        if self.num_modes < 1:
            raise ValueError(f"num_modes must be >= 1, got {self.num_modes}")
        if self.random_shift < 0:
            raise ValueError(f"random_shift must be >= 0, got {self.random_shift}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {self.num_keypoints}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.lr_warmup_steps < 0 or self.lr_decay_steps < 0:
            raise ValueError(
                f"lr_warmup_steps and lr_decay_steps must be >= 0, got {self.lr_warmup_steps}, {self.lr_decay_steps}"
            )
        if not 0.0 < self.lr_final_ratio <= 1.0:
            raise ValueError(f"lr_final_ratio must be in (0, 1], got {self.lr_final_ratio}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    def validate_features(self) -> None:
        images = self.image_features
        if len(images) != 1:
            raise ValueError(f"dojo_pixel needs exactly one image input, got {sorted(images)}")
        (image,) = images.values()
        if len(image.shape) != 3 or image.shape[0] != 3:
            raise ValueError(f"dojo_pixel needs a (3, H, W) image, got {image.shape}")
        if self.robot_state_feature is None:
            raise ValueError(f"dojo_pixel needs a state input named {OBS_STATE!r}")
        if self.action_feature is None:
            raise ValueError(f"dojo_pixel needs an output named {ACTION!r}")

    @property
    def image_key(self) -> str:
        return next(iter(self.image_features))

    @property
    def action_dim(self) -> int:
        return self.action_feature.shape[0]

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, weight_decay=self.optimizer_weight_decay)

    def get_scheduler_preset(self) -> CosineDecayWithWarmupSchedulerConfig | None:
        """lerobot's scheduler config for ``lr_schedule`` (None: constant); build it with ``.build(optimizer,
        num_training_steps)``. Needs ``lr_decay_steps`` > 0 for "cosine"."""
        if self.lr_schedule == "constant":
            return None
        if self.lr_decay_steps < 1:
            raise ValueError('lr_schedule="cosine" needs lr_decay_steps >= 1')
        return CosineDecayWithWarmupSchedulerConfig(
            num_warmup_steps=min(self.lr_warmup_steps, self.lr_decay_steps),
            num_decay_steps=self.lr_decay_steps,
            peak_lr=self.optimizer_lr,
            decay_lr=self.optimizer_lr * self.lr_final_ratio,
        )


# The brief and other packages may use the longer name; lerobot's plugin lookup needs the class to be
# called ``PixelConfig`` (``PixelConfig`` -> ``PixelPolicy``).
PixelPolicyConfig = PixelConfig


class PixelEncoder(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (B, hidden_dim): stride-2 convs, GroupNorm, SiLU, then either the flattened
    feature map (``encoder="flat"``) or ``num_keypoints`` spatial-softmax keypoints (``"keypoints"``) through a
    linear layer."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        hidden_dim: int,
        encoder: str = "flat",
        num_keypoints: int = 32,
    ):
        super().__init__()
        self.convs = make_conv_stack(image_shape[0], channels)
        with torch.no_grad():
            feature_shape = tuple(self.convs(torch.zeros(1, *image_shape)).shape[1:])  # (C, h, w)
        # keypoints: (B, C, h, w) -> (B, K, 2) expected positions in [-1, 1]
        self.keypoints = (
            SpatialSoftmax(feature_shape, num_kp=num_keypoints) if encoder == "keypoints" else None
        )
        width = 2 * num_keypoints if self.keypoints is not None else math.prod(feature_shape)
        self.proj = nn.Linear(width, hidden_dim)

    def forward(self, image: Tensor) -> Tensor:
        # Centre [0, 1] pixels on 0; a fixed map, so the checkpoint needs no image stats.
        features = self.convs(image * 2.0 - 1.0)  # (B, C, h, w)
        if self.keypoints is not None:
            features = self.keypoints(features)  # (B, K, 2)
        return self.proj(features.flatten(1))


def random_shift(image: Tensor, pad: int) -> Tensor:
    """(B, C, H, W) -> the same shape, each image shifted by up to ``pad`` pixels (edge padding, then a random
    crop): the policy must read where things are relative to each other, not memorise absolute pixels."""
    b, _, h, w = image.shape
    padded = F.pad(image, (pad, pad, pad, pad), mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2, b), device=image.device)
    rows = (torch.arange(h, device=image.device)[None, :] + dy[:, None])[:, None, :, None]  # (B, 1, H, 1)
    cols = (torch.arange(w, device=image.device)[None, :] + dx[:, None])[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=image.device)[:, None, None, None]
    channels = torch.arange(image.shape[1], device=image.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


class PixelPolicy(PreTrainedPolicy):
    """Behaviour-cloning pixel policy; inputs and outputs are normalised (see the module docstring)."""

    config_class = PixelConfig
    name = POLICY_TYPE

    def __init__(self, config: PixelConfig, **kwargs: Any):
        # kwargs: lerobot's make_policy passes dataset_stats / dataset_meta; normalisation is in the processors.
        super().__init__(config)
        config.validate_features()
        self.config: PixelConfig = config
        state_dim = config.robot_state_feature.shape[0]
        self.encoder = PixelEncoder(
            tuple(config.image_features[config.image_key].shape),
            config.channels,
            config.hidden_dim,
            config.encoder,
            config.num_keypoints,
        )
        self.head = nn.Sequential(
            nn.Linear(config.hidden_dim + state_dim, config.hidden_dim),
            nn.SiLU(),
            nn.Linear(config.hidden_dim, config.hidden_dim),
            nn.SiLU(),
            # num_modes chunks, then (num_modes > 1) one logit per mode
            nn.Linear(config.hidden_dim, self._head_size(config)),
        )
        self._action_queue: deque[Tensor] = deque()

    @staticmethod
    def _head_size(config: PixelConfig) -> int:
        chunks = config.num_modes * config.chunk_size * config.action_dim
        return chunks + (config.num_modes if config.num_modes > 1 else 0)

    def get_optim_params(self) -> dict:
        return self.parameters()

    def reset(self) -> None:
        """Forget the queued actions; call at every episode start."""
        self._action_queue = deque()

    def _predict(self, batch: dict[str, Tensor]) -> Tensor:
        """Normalised observations -> normalised chunk (B, chunk_size, action_dim), no inference noise: the
        classifier's most likely mode when num_modes > 1."""
        modes, logits = self._predict_modes(batch)
        if logits is None:
            return modes[:, 0]
        return modes[torch.arange(modes.shape[0], device=modes.device), logits.argmax(-1)]

    def _predict_modes(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """-> (chunks (B, num_modes, chunk_size, action_dim), mode logits (B, num_modes) or None)."""
        cfg = self.config
        image = batch[self.config.image_key]
        if image.dim() == 5:  # (B, 1, 3, H, W) when a loader keeps the n_obs_steps axis
            image = image[:, -1]
        if self.training and cfg.random_shift > 0:
            image = random_shift(image, cfg.random_shift)
        state = batch[OBS_STATE]
        if state.dim() == 3:
            state = state[:, -1]
        out = self.head(torch.cat([self.encoder(image), state], dim=-1))  # (B, head size)
        n_chunk = cfg.num_modes * cfg.chunk_size * cfg.action_dim
        modes = out[:, :n_chunk].reshape(-1, cfg.num_modes, cfg.chunk_size, cfg.action_dim)
        return modes, (out[:, n_chunk:] if cfg.num_modes > 1 else None)

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """(B, chunk_size, action_dim) normalised actions. ``noise`` (same shape, unit scale) replaces the
        internally drawn noise when ``inference_noise_std`` > 0; ignored otherwise."""
        chunk = self._predict(batch)
        if self.config.inference_noise_std > 0:
            if noise is None:
                noise = torch.randn_like(chunk)
            chunk = chunk + self.config.inference_noise_std * noise
        return chunk

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """(B, action_dim): the next action of the queued chunk, predicting a new chunk when it runs out."""
        if not self._action_queue:
            chunk = self.predict_action_chunk(batch, noise=noise)[:, : self.config.n_action_steps]
            self._action_queue.extend(chunk.transpose(0, 1))  # n_action_steps x (B, action_dim)
        return self._action_queue.popleft()

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict]:
        """Behaviour-cloning loss on a normalised batch with ``action`` (B, chunk_size, action_dim) and an
        optional ``action_is_pad`` (B, chunk_size) mask (steps past the episode end, from delta timestamps)."""
        target = batch[ACTION]
        if target.dim() == 2:  # (B, A): a single-step target, compare with the first predicted step
            target = target[:, None]
        modes, logits = self._predict_modes(batch)
        prediction = modes[:, :, : target.shape[1]]  # (B, M, T, A)
        error = F.mse_loss if self.config.loss == "mse" else F.l1_loss
        per_step = error(prediction, target[:, None].expand_as(prediction), reduction="none").mean(
            -1
        )  # (B, M, T)
        if "action_is_pad" in batch:
            valid = (~batch["action_is_pad"][:, : target.shape[1]]).to(per_step.dtype)[:, None]  # (B, 1, T)
        else:
            valid = torch.ones_like(per_step[:, :1])
        per_mode = (per_step * valid).sum(-1) / valid.sum(-1).clamp(min=1.0)  # (B, M)
        best = per_mode.argmin(-1)  # (B,): the hypothesis nearest the demonstration is the one trained
        regression = per_mode.gather(1, best[:, None]).mean()
        logs = {f"{self.config.loss}_loss": regression.item()}
        if logits is None:
            return regression, logs
        choice = F.cross_entropy(logits, best)
        logs["mode_loss"] = choice.item()
        return regression + self.config.mode_loss_weight * choice, logs


def make_dojo_pixel_pre_post_processors(
    config: PixelConfig,
    dataset_stats: dict[str, dict[str, Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    """The processors lerobot's ``make_pre_post_processors`` builds for ``dojo_pixel`` (found by name).

    dataset_stats: lerobot's per-feature stats (``min``/``max`` for state and action are used).
    """
    features = {**config.input_features, **config.output_features}
    preprocessor = PolicyProcessorPipeline[dict[str, Any], dict[str, Any]](
        steps=[
            AddBatchDimensionProcessorStep(),
            DeviceProcessorStep(device=config.device),
            NormalizerProcessorStep(
                features=features,
                norm_map=config.normalization_mapping,
                stats=dataset_stats,
                device=config.device,
            ),
        ],
        name=POLICY_PREPROCESSOR_DEFAULT_NAME,
    )
    postprocessor = PolicyProcessorPipeline[PolicyAction, PolicyAction](
        steps=[
            UnnormalizerProcessorStep(
                features=config.output_features, norm_map=config.normalization_mapping, stats=dataset_stats
            ),
            DeviceProcessorStep(device="cpu"),
        ],
        name=POLICY_POSTPROCESSOR_DEFAULT_NAME,
        to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action,
    )
    return preprocessor, postprocessor


def make_pixel_policy(
    dataset_stats: dict[str, dict[str, Tensor]] | None,
    device: str = "cpu",
    **config_kwargs: Any,
) -> tuple[PixelPolicy, PolicyProcessorPipeline, PolicyProcessorPipeline]:
    """A fresh ``PixelPolicy`` on ``device`` with its processors; ``config_kwargs`` go to ``PixelConfig``."""
    config = PixelConfig(device=device, **config_kwargs)
    policy = PixelPolicy(config).to(config.device)
    preprocessor, postprocessor = make_dojo_pixel_pre_post_processors(config, dataset_stats)
    return policy, preprocessor, postprocessor
