"""``dojo-bench bench``: training throughput, model FLOPs utilisation (MFU) and imagination speed.

Same code on CPU and CUDA (``device=auto|cpu|cuda``); CUDA runs under bf16 autocast as training does, CPU in float32.
The model is built at a size preset with random weights (speed does not depend on the weights) or loaded from a
release; batches are synthetic, so the figures are the model's compute, not data loading (training reads a
decoded-frame cache, see data.py).

Training (``what=train``): ``warmup_steps`` untimed, then ``steps`` timed optimiser steps of ``LitWorldModel``
(tokenizer encode under no_grad, DiT forward + backward, AdamW) on (batch_size, clip_length) clips.
- samples/s = batch_size * steps / seconds.
- FLOPs per step: ``torch.utils.flop_counter.FlopCounterMode`` around one whole step. It counts matmuls,
  convolutions and attention (forward and backward), i.e. everything the hardware multiplies, including the frozen
  tokenizer's encoder; elementwise work (norms, activations, the optimiser) is not counted, as usual for MFU.
- MFU = (FLOPs per step / seconds per step) / peak FLOP/s. The peak is ``peak_tflops`` when given (the right
  choice for a report: the vendor's dense figure at the precision used); otherwise, on CUDA, the vendor's dense
  bf16 figure for a few known GPUs (``GPU_PEAK_TFLOPS``, matched on the device name); otherwise (CPU, unknown GPU)
  it is *measured*: the best rate of a square matmul on this device in the training precision
  (``measure_matmul_tflops``). A measured peak is what the device really sustains on an ideal kernel, so MFU
  against it is higher than against a datasheet figure; ``peak_source`` in bench.json says which was used.

Imagination (``what=imagine``): ``ImaginedEnv`` from random observations, for each batch size in
``imagine_batches``: one untimed chunk, then ``imagine_chunks`` timed chunks of ``action_chunk_size`` actions.
frames/s = batch * frames / seconds (all streams), and per stream.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch.utils.flop_counter import FlopCounterMode

from dojo_bench.core.checks import check_int, check_number, check_parts
from dojo_bench.core.devices import check_device, resolve_device
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.keys import ACTION, GT_OBJECT_POSE, OBS_IMAGE, OBS_STATE
from dojo_bench.core.run_dir import prepare_run_dir, write_json
from world_model.checkpoint import CheckpointError
from world_model.compile import maybe_compile, normalise_compile
from world_model.dit import make_dit_config
from world_model.imagined_env import ImaginedEnv
from world_model.lit_world_model import LitWorldModel
from world_model.model import WorldModel, WorldModelConfig
from world_model.pixel_env import PixelImaginedEnv, is_pixel_release
from world_model.sampler import SamplerConfig
from world_model.tokenizer import TokenizerConfig, VideoTokenizer

WHATS = ("all", "train", "imagine")
BENCH_FILE = "bench.json"
ACTION_DIM = 2  # the dojo's (gym-pusht) target-position actions and agent-position states
# Dense bf16 TFLOP/s from the vendors' datasheets (no sparsity), matched as substrings of the device name.
GPU_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
}


@dataclass
class BenchConfig:
    """What ``dojo-bench bench`` measures. Built by the CLI from Hydra (its keys: dojo_bench/schemas.py); validated
    here."""

    out: str = ""  # directory to write bench.json (required)
    what: str = "all"  # all | train | imagine
    release: str | None = None  # a world-model release dir to benchmark instead of a fresh model of the given
    #   size
    device: str = "auto"  # auto | cpu | cuda (bf16 autocast on CUDA, float32 on CPU, as in training)
    seed: int = 0  # seeds the random weights and the synthetic batches
    preset: str = "default"  # the size preset, set by size=default|tiny
    threads: int | None = None  # CPU threads for torch (null: torch's default)
    batch_size: int = 32  # training samples per step
    clip_length: int = 13  # frames per training clip (1 context + 12 predicted)
    warmup_steps: int = 2  # untimed training steps first (allocator, kernels)
    steps: int = 10  # timed training steps
    peak_tflops: float | None = None  # the device's peak dense TFLOP/s for MFU; null: a table of known GPUs
    #   (bf16 dense), else measured: the best fp32 matmul rate of this device (docs in dojo_bench/verbs/bench.py)
    imagine_batches: list[int] = field(default_factory=lambda: [1, 8])  # imagination batch sizes: one stream,
    #   then batched
    imagine_chunks: int = 3  # timed action chunks (4 frames each) per batch size, after one untimed chunk
    sampler: dict[str, Any] = field(default_factory=dict)  # SamplerConfig fields of a fresh model
    tokenizer_model: dict[str, Any] = field(default_factory=dict)  # TokenizerConfig fields of a fresh model
    dit: dict[str, Any] = field(default_factory=dict)  # DiTConfig of a fresh model: size preset and switches
    compile: str = "auto"  # torch.compile the network: auto (CUDA only; CPU needs a C++ toolchain) | true |
    #   false

    def __post_init__(self) -> None:
        self.compile = normalise_compile(self.compile)
        if not self.out:
            raise UsageError("out=DIR is required: where to write bench.json")
        if self.what not in WHATS:
            raise UsageError(f"unknown what={self.what!r}; choose one of {', '.join(WHATS)}")
        check_device(self.device)
        for name in ("batch_size", "steps", "imagine_chunks", "clip_length"):
            check_int(name, getattr(self, name))
        for name in ("warmup_steps", "seed"):
            check_int(name, getattr(self, name), minimum=0)
        self.imagine_batches = (
            [self.imagine_batches] if isinstance(self.imagine_batches, int) else list(self.imagine_batches)
        )
        if not self.imagine_batches:
            raise UsageError("imagine_batches must list at least one batch size, e.g. imagine_batches=[1,8]")
        for b in self.imagine_batches:
            check_int("imagine_batches", b, hint=" in every entry")
        check_number("peak_tflops", self.peak_tflops, "a number > 0", lambda x: x > 0, optional=True)
        check_int("threads", self.threads, optional=True)
        check_parts({"tokenizer_model": lambda s: TokenizerConfig(**{"temporal_compression": 4, **s}),
                     "dit": lambda s: make_dit_config(s.pop("size", "default"), **s),
                     "sampler": lambda s: SamplerConfig(**s)}, vars(self))  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------------
# Model, batches, timing
# ----------------------------------------------------------------------------------------------------------------------


def build_model(cfg: BenchConfig):
    """A ``WorldModel`` (tokenizer + DiT) with random weights at the configured size, or the release's; for a
    pixel world-model release, its ``PixelImaginedEnv`` (imagination only)."""
    if cfg.release is not None:
        try:
            if is_pixel_release(cfg.release):
                if cfg.what != "imagine":
                    raise CheckpointError(
                        f"{cfg.release} is the pixel world model: bench it with what=imagine "
                        "(its training speed is in its training run's summary)"
                    )
                return PixelImaginedEnv.from_checkpoint(cfg.release, seed=cfg.seed)
            model = WorldModel.from_checkpoint(cfg.release)
            SamplerConfig(**cfg.sampler)  # bad sampler settings are one line now, before anything runs
        except (CheckpointError, TypeError, ValueError) as error:
            raise DojoError(str(error)) from None
        return model
    try:
        tokenizer = VideoTokenizer(TokenizerConfig(**{"temporal_compression": 4, **cfg.tokenizer_model}))
        tok = tokenizer.cfg
        dit = make_dit_config(
            cfg.dit.get("size", "default"),
            **{k: v for k, v in cfg.dit.items() if k != "size"},
            max_latent_frames=max(16, tok.num_latent_frames(cfg.clip_length)),
            latent_channels=tok.latent_channels,
            latent_size=tok.latent_size,
            action_dim=ACTION_DIM,
            state_dim=ACTION_DIM,
            action_chunk_size=tok.temporal_compression,
        )
        config = WorldModelConfig(dit=dit, sampler=SamplerConfig(**cfg.sampler), seed=cfg.seed)
        return WorldModel(config, tokenizer)
    except (TypeError, ValueError) as error:
        raise UsageError(f"bad model settings: {error}") from None


def synthetic_batch(module, batch_size: int, clip_length: int, device: str, generator) -> dict:
    """A batch in the batch.py layout: random frames, and actions/states around the dojo's 512-pixel workspace."""
    size, a = module.tokenizer.cfg.image_size, module.cfg.dit.action_dim
    images = torch.randint(
        0, 256, (batch_size, clip_length, 3, size, size), dtype=torch.uint8, generator=generator
    )
    states = 256 + 50 * torch.randn(batch_size, clip_length, module.cfg.dit.state_dim, generator=generator)
    actions = states[..., :a] + 10 * torch.randn(batch_size, clip_length, a, generator=generator)
    return {OBS_IMAGE: images.to(device), ACTION: actions.to(device), OBS_STATE: states.to(device)}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure_matmul_tflops(device: str, size: int | None = None, repeats: int = 5) -> float:
    """Best TFLOP/s of a square matmul (bf16 on CUDA, float32 on CPU, the training precisions)."""
    size = size or (8192 if device == "cuda" else 1024)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    x = torch.randn(size, size, device=device, dtype=dtype)
    y = torch.randn(size, size, device=device, dtype=dtype)
    x @ y  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        x @ y
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def peak_tflops(cfg: BenchConfig, device: str) -> tuple[float, str]:
    """(peak TFLOP/s, where it comes from): see the module docstring."""
    if cfg.peak_tflops is not None:
        return float(cfg.peak_tflops), "config peak_tflops"
    if device == "cuda":
        name = torch.cuda.get_device_name()
        for key, value in GPU_PEAK_TFLOPS.items():
            if key in name:
                return value, f"datasheet dense bf16 for {key}"
    return measure_matmul_tflops(device), f"measured best {'bf16' if device == 'cuda' else 'fp32'} matmul"


# ----------------------------------------------------------------------------------------------------------------------
# The two benchmarks
# ----------------------------------------------------------------------------------------------------------------------


def bench_train(cfg: BenchConfig, model: WorldModel, device: str) -> dict[str, Any]:
    """Training throughput (samples/s) and MFU of ``model``'s training module on synthetic batches."""
    module = LitWorldModel(model.cfg, model.tokenizer, model.dit)
    module.to(device).train()
    optimizer = torch.optim.AdamW(module.dit.parameters(), lr=module.cfg.learning_rate)
    generator = torch.Generator().manual_seed(cfg.seed)
    batch = synthetic_batch(module, cfg.batch_size, cfg.clip_length, device, generator)

    def step() -> None:
        loss = module.losses(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        step()  # also the first warm-up step
    flops = counter.get_total_flops()

    # Compiled after the FLOP count (counted on the eager graph); compilation itself happens in the warm-up.
    compiled = maybe_compile(module.dit, cfg.compile, device)
    for _ in range(cfg.warmup_steps):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(cfg.steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    step_seconds = seconds / cfg.steps
    peak, source = peak_tflops(cfg, device)
    achieved = flops / step_seconds / 1e12
    return {
        "batch_size": cfg.batch_size,
        "clip_length": cfg.clip_length,
        "steps": cfg.steps,
        "seconds_per_step": round(step_seconds, 4),
        "samples_per_second": round(cfg.batch_size / step_seconds, 3),
        "gflop_per_step": round(flops / 1e9, 4),
        "achieved_tflops": round(achieved, 4),
        "peak_tflops": round(peak, 3),
        "peak_source": source,
        "mfu": round(achieved / peak, 4),
        "compiled": compiled,
        "dit_parameters": sum(p.numel() for p in module.dit.parameters()),
    }


def bench_imagine(cfg: BenchConfig, module, device: str) -> dict[str, Any]:
    """Frames/s of ``ImaginedEnv`` for each batch size in ``cfg.imagine_batches``."""
    if hasattr(module, "step"):  # an env already: the pixel world model (one pass per frame, no sampler)
        env, sampler = module, module.sampler.cfg
        env.model.to(device)
        env.device = torch.device(device)
    else:
        sampler = SamplerConfig(**{**asdict(module.cfg.sampler), **cfg.sampler})
        env = ImaginedEnv(
            module.tokenizer, module.dit, module.cfg, device=device, sampler=sampler, seed=cfg.seed
        )
    rng = np.random.default_rng(cfg.seed)
    size, c = env.image_size, env.chunk_size
    results = {}
    for b in cfg.imagine_batches:
        images = rng.integers(0, 256, (b, size, size, 3), dtype=np.uint8)
        states = (256 + 50 * rng.standard_normal((b, env.state_dim))).astype(np.float32)
        start_pose = {GT_OBJECT_POSE: np.tile([256.0, 256.0, 0.0], (b, 1)).astype(np.float32)}
        env.reset(
            {OBS_IMAGE: images, OBS_STATE: states, **start_pose}
        )  # a model without an object ignores it

        # (1 + imagine_chunks) action chunks (b, c, A) around the start state; the first one is an untimed warm-up
        chunks = (
            states[:, None] + 10 * rng.standard_normal((1 + cfg.imagine_chunks, b, c, env.action_dim))
        ).astype(np.float32)
        env.step(chunks[0])
        _sync(device)
        start = time.perf_counter()
        for actions in chunks[1:]:
            env.step(actions)
        _sync(device)
        seconds = time.perf_counter() - start
        frames = b * c * cfg.imagine_chunks
        results[str(b)] = {
            "batch": b,
            "frames": frames,
            "seconds": round(seconds, 4),
            "frames_per_second": round(frames / seconds, 3),
            "frames_per_second_per_stream": round(frames / seconds / b, 3),
        }
    return {"sampler": asdict(sampler), "chunk_size": c, "batches": results}


def cpu_name() -> str | None:
    """The CPU model from /proc/cpuinfo (Linux), else None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def run_bench(cfg: BenchConfig, overwrite: bool = False) -> dict[str, Any]:
    """Run the benchmarks into ``cfg.out/bench.json``; returns the figures."""
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    module = build_model(cfg)  # a bad release or size fails here, before out is written
    run = prepare_run_dir(cfg.out, "bench", asdict(cfg), overwrite)
    hardware = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"{cpu_name() or platform.processor() or platform.machine()} CPU"
    )
    result: dict[str, Any] = {
        "device": device,
        "hardware": hardware,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "precision": "bf16 autocast" if device == "cuda" else "float32",
        "preset": cfg.preset,
        "release": cfg.release,
    }
    if cfg.what in ("all", "imagine"):
        result["imagine"] = bench_imagine(cfg, module, device)  # before training changes the weights
    if cfg.what in ("all", "train"):
        result["train"] = bench_train(cfg, module, device)
    write_json(Path(run.path) / BENCH_FILE, result)
    run.finish({"bench": str(Path(run.path) / BENCH_FILE)})
    return result


def print_bench(result: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"[bold]{result['hardware']}[/bold] ({result['device']}, {result['precision']}, "
        f"{result['threads']} threads, preset {result['preset']})"
    )
    if "train" in result:
        t = result["train"]
        console.print(
            f"train: {t['samples_per_second']} samples/s (batch {t['batch_size']} x {t['clip_length']} frames, "
            f"{t['seconds_per_step']} s/step); {t['gflop_per_step']} GFLOP/step -> {t['achieved_tflops']} TFLOP/s "
            f"= MFU {t['mfu']:.1%} of {t['peak_tflops']} TFLOP/s ({t['peak_source']}); "
            f"DiT {t['dit_parameters'] / 1e6:.1f}M parameters"
        )
    if "imagine" in result:
        i = result["imagine"]
        s = i["sampler"]
        for b in i["batches"].values():
            console.print(
                f"imagine batch {b['batch']}: {b['frames_per_second']} frames/s "
                f"({b['frames_per_second_per_stream']} per stream; {s['method']} {s['num_steps']} steps, "
                f"{i['chunk_size']} frames per chunk)"
            )
