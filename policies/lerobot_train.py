"""Train lerobot's own policy classes (Diffusion Policy, ACT) on dojo datasets with lerobot's own trainer.

Nothing here trains: ``make_train_config`` builds lerobot's ``TrainPipelineConfig`` for a dataset recorded by
``dojo-bench data`` (read from its folder, offline, with the pyav video backend), and ``train`` hands it to
``lerobot.scripts.lerobot_train.train``, the function behind ``lerobot-train``. ``lerobot_train_command`` prints the
same run as a ``lerobot-train`` command line (docs/lerobot_policies.md). What lerobot writes
(``OUT/checkpoints/NNNNNN/pretrained_model``: config, weights, processors) is what ``dojo-bench evaluate`` and
``plan`` load, unchanged.

The presets (``PRESETS``) are the settings that make each class train in reasonable time on a CPU here: no
pretrained backbone (nothing downloads; lerobot's ACT would fetch ImageNet ResNet-18 weights by default), a
narrower network, fewer diffusion steps at inference. ``size="tiny"`` is a seconds-long smoke version (tests).
Everything else is lerobot's default for the class (its optimiser and scheduler presets, its normalisation).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from dojo_bench.core.errors import UsageError
from dojo_bench.core.keys import ACTION, GT_EXPERT_ACTION

POLICY_TYPES = ("diffusion", "act")
SIZES = ("cpu", "tiny")
CHECKPOINTS_DIR = "checkpoints"
PRETRAINED_DIR = "pretrained_model"

# Per class and size: lerobot config fields (the names of lerobot's configuration_<type>.py) on top of its defaults.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "diffusion": {
        # lerobot's PushT recipe (n_obs_steps 2, horizon 16, n_action_steps 8, DDPM 100 train steps) with a
        # narrower U-Net and DDIM's 10 steps at inference; ResNet-18 from scratch (the only backbone family).
        "cpu": {
            "pretrained_backbone_weights": None,
            "down_dims": (128, 256, 512),
            "noise_scheduler_type": "DDIM",
            "num_inference_steps": 10,
        },
        "tiny": {
            "pretrained_backbone_weights": None,
            "n_obs_steps": 2,
            "horizon": 8,
            "n_action_steps": 4,
            "drop_n_last_frames": 3,
            "down_dims": (8, 16),
            "kernel_size": 3,
            "n_groups": 4,
            "diffusion_step_embed_dim": 8,
            "spatial_softmax_num_keypoints": 4,
            "num_train_timesteps": 4,
        },
    },
    "act": {
        # ACT with a 256-wide transformer, chunks of 16 of which 8 run (lerobot's default is 100/100 for 50 Hz
        # arms; the dojo runs at 10 Hz), the learning rate of a from-scratch backbone.
        "cpu": {
            "pretrained_backbone_weights": None,
            "dim_model": 256,
            "dim_feedforward": 1024,
            "chunk_size": 16,
            "n_action_steps": 8,
            "optimizer_lr": 1e-4,
            "optimizer_lr_backbone": 1e-4,
        },
        "tiny": {
            "pretrained_backbone_weights": None,
            "dim_model": 16,
            "n_heads": 2,
            "dim_feedforward": 32,
            "n_encoder_layers": 1,
            "n_decoder_layers": 1,
            "n_vae_encoder_layers": 1,
            "latent_dim": 4,
            "chunk_size": 8,
            "n_action_steps": 4,
        },
    },
}


@dataclass
class LerobotTrainConfig:
    """One lerobot training run on a dojo dataset.

    data: a LeRobot dataset folder written by ``dojo-bench data`` (e.g. ``runs/data/train``); out: lerobot's
    ``output_dir`` (must not exist: lerobot refuses to overwrite); policy_type: "diffusion" or "act"; size:
    "cpu" (the presets above) or "tiny"; overrides: more lerobot config fields of the class (e.g.
    ``{"temporal_ensemble_coeff": 0.01, "n_action_steps": 1}`` for ACT); save_freq: steps between checkpoints
    (0: only the last); num_workers: data-loader processes.
    """

    data: str
    out: str
    policy_type: str = "diffusion"
    size: str = "cpu"
    steps: int = 1000
    batch_size: int = 32
    save_freq: int = 0
    log_freq: int = 100
    seed: int = 1000
    num_workers: int = 0
    device: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.policy_type not in POLICY_TYPES:
            raise UsageError(
                f"policy_type must be one of {', '.join(POLICY_TYPES)}, got {self.policy_type!r}"
            )
        if self.size not in SIZES:
            raise UsageError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        for name in ("steps", "batch_size", "log_freq"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.save_freq, int) or self.save_freq < 0:
            raise UsageError(f"save_freq must be an integer >= 0, got {self.save_freq!r}")
        if not (Path(self.data) / "meta" / "info.json").is_file():
            raise UsageError(f"data={self.data} is not a LeRobot dataset folder (no meta/info.json)")
        if Path(self.out).exists():
            raise UsageError(f"out={self.out} exists; lerobot's trainer writes only into a new folder")
        off_label = executed_share(self.data)
        if off_label > 0:
            raise UsageError(
                f"data={self.data}: {off_label:.0%} of its frames executed another action than the expert's label "
                f"({GT_EXPERT_ACTION}: a learner drove them) and lerobot-train imitates action; convert it first: "
                f"python -m dojo_bench.dojo.expert_actions {self.data} OUT"
            )

    @property
    def policy_fields(self) -> dict[str, Any]:
        """The lerobot config fields of the policy: the preset, then the overrides, on CPU, never pushed."""
        fields = {**PRESETS[self.policy_type][self.size], **self.overrides}
        return {**fields, "device": self.device, "push_to_hub": False}


def executed_share(data: str | Path) -> float:
    """Share of a dataset's frames whose executed ``action`` differs from the expert's label (0 where there is no
    ``gt.expert_action`` or, as with the re-planning expert alone, every executed action is the label)."""
    data = Path(data)
    if GT_EXPERT_ACTION not in json.loads((data / "meta" / "info.json").read_text())["features"]:
        return 0.0
    differ = total = 0
    for path in sorted((data / "data").rglob("*.parquet")):
        table = pq.read_table(path, columns=[ACTION, GT_EXPERT_ACTION])
        executed = np.asarray(table.column(ACTION).to_pylist(), dtype=np.float32)  # (frames, action dim)
        label = np.asarray(table.column(GT_EXPERT_ACTION).to_pylist(), dtype=np.float32)
        differ += int((np.abs(executed - label) > 1e-3).any(axis=1).sum())
        total += len(label)
    return differ / max(total, 1)


def make_train_config(cfg: LerobotTrainConfig):
    """lerobot's ``TrainPipelineConfig`` for ``cfg``: the dataset read from its folder with pyav, no evaluation
    env (dojo-bench evaluates), no wandb, a checkpoint every ``save_freq`` steps and at the end."""
    from lerobot.configs.default import DatasetConfig, WandBConfig  # lerobot is slow to import: only to train
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.configs.train import TrainPipelineConfig

    policy_class = PreTrainedConfig.get_choice_class(cfg.policy_type)
    data = Path(cfg.data).resolve()
    return TrainPipelineConfig(
        dataset=DatasetConfig(repo_id=f"dojo/{data.name}", root=str(data), video_backend="pyav"),
        policy=policy_class(**cfg.policy_fields),
        output_dir=Path(cfg.out),
        seed=cfg.seed,
        num_workers=cfg.num_workers,
        batch_size=cfg.batch_size,
        steps=cfg.steps,
        eval_freq=0,
        log_freq=cfg.log_freq,
        save_checkpoint=True,
        save_freq=cfg.save_freq or cfg.steps,
        wandb=WandBConfig(enable=False),
    )


def _cli_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def lerobot_train_command(cfg: LerobotTrainConfig) -> list[str]:
    """The ``lerobot-train`` command line of the same run (one argument per item)."""
    data = Path(cfg.data).resolve()
    args = [
        "lerobot-train",
        f"--dataset.repo_id=dojo/{data.name}",
        f"--dataset.root={data}",
        "--dataset.video_backend=pyav",
        f"--policy.type={cfg.policy_type}",
    ]
    args += [f"--policy.{key}={_cli_value(value)}" for key, value in cfg.policy_fields.items()]
    args += [
        f"--output_dir={cfg.out}",
        f"--steps={cfg.steps}",
        f"--batch_size={cfg.batch_size}",
        f"--save_freq={cfg.save_freq or cfg.steps}",
        f"--log_freq={cfg.log_freq}",
        f"--seed={cfg.seed}",
        f"--num_workers={cfg.num_workers}",
        "--eval_freq=0",
        "--wandb.enable=false",
    ]
    return args


def checkpoint_folders(out: str | Path) -> list[Path]:
    """The ``pretrained_model`` folders of a lerobot training run, in step order (``last`` not repeated)."""
    root = Path(out) / CHECKPOINTS_DIR
    steps = sorted(p for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []
    return [p / PRETRAINED_DIR for p in steps if (p / PRETRAINED_DIR).is_dir()]


def train(cfg: LerobotTrainConfig, quiet: bool = False) -> Path:
    """Run lerobot's trainer (``lerobot.scripts.lerobot_train.train``) in this process; returns the last
    checkpoint's ``pretrained_model`` folder. ``quiet`` hides lerobot's printed config."""
    # lerobot is slow to import: only to train
    from lerobot.scripts.lerobot_train import train as lerobot_train

    config = make_train_config(cfg)
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        lerobot_train(config)
    return checkpoint_folders(cfg.out)[-1]


__all__ = [
    "PRESETS",
    "LerobotTrainConfig",
    "checkpoint_folders",
    "lerobot_train_command",
    "make_train_config",
    "train",
]
