"""What ``dojo-bench train`` trains: ``TrainConfig`` (built by the CLI from Hydra, validated here) and the
stage names and out-dir names every stage shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dojo_bench.core.checks import check_int, check_number, check_parts
from dojo_bench.core.devices import check_device
from dojo_bench.core.errors import UsageError
from dojo_bench.dojo.recording import DataConfig
from dojo_bench.value.value_model import ValueModelConfig
from policies.pixel_policy import PixelConfig
from world_model.compile import normalise_compile
from world_model.dit import make_dit_config
from world_model.flow import FlowConfig
from world_model.lit_pixel_model import LitPixelWorldModelConfig
from world_model.model import WorldModelConfig
from world_model.sampler import SamplerConfig
from world_model.tokenizer import TokenizerConfig

STAGES = ("tokenizer", "world_model", "pixel_world_model", "value_model", "policy")
ACTION_STAGES = ("world_model", "pixel_world_model")  # stages whose clips need actions and states
FRAME_STAGES = ("value_model", "policy")  # single-frame stages (train/value_model.py, train/policy.py)
RELEASE_DIR = "release"
CHECKPOINT_DIR = "checkpoints"

# Every nested settings block of TrainConfig, built as the stage will build it (data-dependent fields at their
# defaults), so a bad value is one line naming its block when the config is built, before out is written.
PARTS = {
    "tokenizer_model": lambda s: TokenizerConfig(**{"temporal_compression": 4, **s}),
    "dit": lambda s: make_dit_config(s.pop("size", "default"), **s),
    "world_model": lambda s: WorldModelConfig(**s),
    "flow": lambda s: FlowConfig(**s),
    "sampler": lambda s: SamplerConfig(**s),
    "value_model": lambda s: ValueModelConfig(**s),
    "policy": lambda s: PixelConfig(**{**s, "device": "cpu"}),
    "pixel": lambda s: LitPixelWorldModelConfig(**s),
}


@dataclass
class TrainConfig:
    """What ``dojo-bench train`` trains. Built by the CLI from Hydra (its keys: dojo_bench/schemas.py); validated
    here."""

    stage: str = "world_model"  # tokenizer | world_model (latent DiT) | pixel_world_model (CPU) |
    #   value_model | policy
    out: str = ""  # directory to write (required)
    data: str | list[str] | None = None  # a LeRobot dataset root, or a `dojo-bench data` out dir (train/ +
    #   validation/); size=tiny records a tiny one into out/data when null
    validation: str | list[str] | None = None  # validation dataset root(s); default: DIR/validation of a data
    #   out dir
    tokenizer: str | None = None  # stage=world_model: a tokenizer release dir (OUT/release of
    #   stage=tokenizer); null trains one first into out/tokenizer with the same data and size
    preset: str = "default"  # the size preset, set by size=default|tiny
    seed: int = 0  # seeds the weights, the data order and size=tiny's own data
    device: str = "auto"  # auto | cpu | cuda (bf16 mixed precision on CUDA only)
    devices: int | str = 1  # Lightning devices; several GPUs: devices=N strategy=ddp (not yet tested on GPUs)
    strategy: str = "auto"  # Lightning strategy: auto | ddp | ...
    max_steps: int = 10000  # training steps
    batch_size: int = 32  # clips (or frames) per step
    clip_length: int = 13  # frames per clip: 1 context + 12 predicted (1 + 4k with the 4x temporal tokenizer)
    learning_rate: float | None = None  # null: the module's default (tokenizer 2e-4, world model 1e-4)
    num_workers: int = 0  # data loader processes
    val_every: int = 1000  # training steps between validations
    val_batches: int = 4  # validation batches per validation (the first one is also sampled: PSNR vs
    #   copy-last)
    checkpoint_every: int = 1000  # steps between Lightning checkpoints (out/checkpoints/last.ckpt, for
    #   resume)
    cache_dir: str | None = None  # decoded-frame caches; null: $DOJO_BENCH_CACHE/frames or
    #   ~/.cache/dojo-bench/frames
    tokenizer_model: dict[str, Any] = field(default_factory=dict)  # TokenizerConfig fields (stage=tokenizer)
    dit: dict[str, Any] = field(default_factory=dict)  # DiTConfig: size preset (tiny | small (CPU) | default
    #   (GPU)) and switches
    world_model: dict[str, Any] = field(default_factory=dict)  # WorldModelConfig fields (relative_actions,
    #   num_context_frames, ...)
    flow: dict[str, Any] = field(default_factory=dict)  # FlowConfig fields
    sampler: dict[str, Any] = field(default_factory=dict)  # SamplerConfig fields (validation rollouts)
    tiny_data: dict[str, Any] = field(default_factory=dict)  # DataConfig fields of the dataset size=tiny
    #   records when data= is not given
    value_model: dict[str, Any] = field(default_factory=dict)  # ValueModelConfig (stage=value_model): frames
    #   -> progress in [0, 1] + success logit
    policy: dict[str, Any] = field(default_factory=dict)  # PixelConfig (stage=policy): the project's LeRobot
    #   pixel policy (type dojo_pixel)
    pixel: dict[str, Any] = field(default_factory=dict)  # LitPixelWorldModelConfig (stage=pixel_world_model):
    #   the CPU world model in pixel space; clip_length = num_context_frames + unrolled steps (e.g. 3 + 8 = 11)
    init: str | None = None  # stage=pixel_world_model: start from this release's weights (fine-tuning;
    #   architecture kept)
    policy_episodes: str = "expert"  # stage=policy: clone this data policy's episodes (meta/dojo.json
    #   policies), or all
    max_episodes: int | None = None  # stage=policy|value_model: use only the first N chosen training episodes
    #   (zoo: data size)
    save_steps: list[int] | None = None  # stage=policy: also write out/checkpoints/step-N/pretrained_model at
    #   these steps, e.g. save_steps=[500,1000,2000] (zoo: training steps); the last step is always saved
    label_stride: int = 1  # stage=policy: in DAgger data (gt.expert_action), train only on frames at
    #   multiples of this, where the expert's look-ahead chunk starts (the learner's chunk size, e.g. 8)
    compile: str = "auto"  # torch.compile the network: auto (CUDA only; CPU needs a C++ toolchain) | true |
    #   false

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise UsageError(f"unknown stage={self.stage!r}; choose one of {', '.join(STAGES)}")
        if not self.out:
            raise UsageError("out=DIR is required: where to write checkpoints")
        check_device(self.device)
        for name in ("max_steps", "batch_size", "val_every", "checkpoint_every", "label_stride"):
            check_int(name, getattr(self, name))
        for name in ("seed", "val_batches", "num_workers"):
            check_int(name, getattr(self, name), minimum=0)
        check_int("max_episodes", self.max_episodes, optional=True)
        check_int("clip_length", self.clip_length, minimum=2, hint=" (context and predicted frames)")
        check_number("learning_rate", self.learning_rate, "a number > 0", lambda x: x > 0, optional=True)
        if self.save_steps is not None:
            steps = [self.save_steps] if isinstance(self.save_steps, int) else list(self.save_steps)
            if not all(isinstance(s, int) and 1 <= s <= self.max_steps for s in steps):
                raise UsageError(
                    f"save_steps must be integers in 1..max_steps={self.max_steps}, got {self.save_steps!r}"
                )
            self.save_steps = steps

        self.compile = normalise_compile(self.compile)
        if self.init is not None and self.stage != "pixel_world_model":
            raise UsageError("init= (start from a release's weights) is for stage=pixel_world_model")
        if self.stage == "tokenizer" and self.tokenizer is not None:
            raise UsageError("tokenizer= is for stage=world_model; stage=tokenizer trains a new one")
        check_parts({**PARTS, "tiny_data": lambda s: self.tiny_data_config("tiny-data")}, vars(self))
        self._check_clip_length()

    def tiny_data_config(self, out: str) -> DataConfig:
        """What size=tiny records into ``out`` when data= is not given: small robot data (``tiny_data=`` over the
        defaults); stage=policy records only the cloned policy's episodes, so the tiny run always has some."""
        defaults = {"kind": "robot", "episodes": 4, "max_steps": 20, "workers": 1}
        cloned = (
            {"policy": self.policy_episodes}
            if self.stage == "policy" and self.policy_episodes != "all"
            else {}
        )
        if self.data is not None:
            cloned = {}  # the given data's policies are checked when it is read
        return DataConfig(**{**defaults, **cloned, **self.tiny_data, "seed": self.seed, "out": out})

    def _check_clip_length(self) -> None:
        """The tokenizer's clips (and the latent world model's, with a tokenizer trained inline) hold 1 + k * its
        temporal compression frames; a given tokenizer= is checked against the data when it loads."""
        c = int(self.tokenizer_model.get("temporal_compression", 4))
        inline = self.stage == "tokenizer" or (self.stage == "world_model" and self.tokenizer is None)
        if inline and (self.clip_length - 1) % c:
            k = max(1, (self.clip_length - 1) // c)
            raise UsageError(
                f"clip_length={self.clip_length} does not fit temporal_compression={c}: use 1 + k*{c} frames "
                f"(e.g. {1 + k * c})"
            )

    @property
    def tiny(self) -> bool:
        return self.preset == "tiny"
