"""World-model checkpoints: ``model.safetensors`` + ``config.json`` in one directory. Never pickle.

Layout:
- ``config.json``: ``{"format": "dojo-bench/world-model", "version": 1, "components": {name: config dict},
  "extra": {...}}``. Components are ``tokenizer`` (``TokenizerConfig``) and/or ``dit`` (``DiTConfig``); ``extra``
  holds whatever else a consumer needs (training config, latent scale, provenance), as plain JSON.
- ``model.safetensors``: tensors named ``<component>.<parameter>``; its metadata records the SHA-256 of the
  components' canonical JSON, so weights and a config that do not belong together are refused even when every shape
  happens to match (e.g. a changed attention mode). ``config.json`` records the SHA-256 of the weights file
  (``weights_sha256``), which catches damage that still parses (flipped bytes) and doubles as the checkpoint hash
  for provenance.

Every problem a user can cause (missing or corrupt file, foreign config, shapes that do not match, an action
dimension or image size other than the caller's) raises ``CheckpointError`` (a ``ValueError``) with one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from dojo_bench.core.files import atomic_write
from dojo_bench.core.manifest import sha256_of_file
from world_model.dit import DiT, DiTConfig
from world_model.pixel_model import PixelWorldModel, PixelWorldModelConfig
from world_model.tokenizer import TokenizerConfig, VideoTokenizer

CHECKPOINT_FORMAT = "dojo-bench/world-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

COMPONENTS: dict[str, tuple[type[nn.Module], type]] = {
    "tokenizer": (VideoTokenizer, TokenizerConfig),
    "dit": (DiT, DiTConfig),
    "pixel": (PixelWorldModel, PixelWorldModelConfig),
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message is one line naming the file and the problem."""


@dataclass
class LoadedWorldModel:
    """What ``load_world_model`` returns; components absent from the checkpoint are None."""

    tokenizer: VideoTokenizer | None = None
    dit: DiT | None = None
    pixel: PixelWorldModel | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _canonical(components: dict[str, dict[str, Any]]) -> str:
    return json.dumps(components, sort_keys=True, separators=(",", ":"))


def _config_hash(components: dict[str, dict[str, Any]]) -> str:
    return hashlib.sha256(_canonical(components).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------------------------
# Save
# ----------------------------------------------------------------------------------------------------------------------


def save_world_model(
    directory: str | Path,
    *,
    tokenizer: VideoTokenizer | None = None,
    dit: DiT | None = None,
    pixel: PixelWorldModel | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for the given components into ``directory``; returns it."""
    modules = {n: m for n, m in (("tokenizer", tokenizer), ("dit", dit), ("pixel", pixel)) if m is not None}
    if not modules:
        raise ValueError("save_world_model needs at least one of tokenizer=, dit= or pixel=")
    components = {name: dataclasses.asdict(m.cfg) for name, m in modules.items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": FORMAT_VERSION,
        "components": components,
        "extra": extra or {},
    }
    try:
        json.dumps(payload)
    except TypeError as err:
        raise ValueError(f"extra must be plain JSON (dicts, lists, str, numbers, bool, None): {err}") from err

    tensors = {
        f"{name}.{key}": value.detach().to("cpu").contiguous()
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }
    metadata = {"format": CHECKPOINT_FORMAT, "config_sha256": _config_hash(components)}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(tensors, str(p), metadata=metadata))
    payload["weights_sha256"] = sha256_of_file(directory / WEIGHTS_FILE)
    text = json.dumps(payload, indent=2, sort_keys=True)
    atomic_write(directory / CONFIG_FILE, lambda p: p.write_text(text + "\n"))
    return directory


# ----------------------------------------------------------------------------------------------------------------------
# Load
# ----------------------------------------------------------------------------------------------------------------------


def read_config(directory: str | Path) -> dict[str, Any]:
    """Parse and check ``config.json`` (format, version, component names); returns the payload."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: not found; a world-model checkpoint directory holds {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not a {CHECKPOINT_FORMAT} config (format={payload.get('format')!r})"
            if isinstance(payload, dict)
            else f"{path}: not a {CHECKPOINT_FORMAT} config"
        )
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {payload.get('version')!r} is not supported (this code reads {FORMAT_VERSION})"
        )
    components = payload.get("components")
    if not isinstance(components, dict) or not components or set(components) - set(COMPONENTS):
        raise CheckpointError(f"{path}: components must be a non-empty subset of {sorted(COMPONENTS)}")
    return payload


def _build(name: str, cfg_dict: Any, config_path: Path) -> nn.Module:
    module_cls, config_cls = COMPONENTS[name]
    if not isinstance(cfg_dict, dict):
        raise CheckpointError(f"{config_path}: components.{name} must be an object")
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(cfg_dict) - known)
    if unknown:
        raise CheckpointError(f"{config_path}: unknown {config_cls.__name__} field(s) {unknown}")
    try:
        cfg = config_cls(**cfg_dict)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{config_path}: invalid {config_cls.__name__}: {err}") from err
    return module_cls(cfg)


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; the checkpoint is incomplete")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as err:  # safetensors raises its own error types (and OSError) for damaged files
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({type(err).__name__}: {err})"
        ) from err
    return tensors, metadata


def load_world_model(
    directory: str | Path,
    *,
    device: torch.device | str = "cpu",
    expected_action_dim: int | None = None,
    expected_state_dim: int | None = None,
    expected_image_size: int | None = None,
    require: tuple[str, ...] = (),
) -> LoadedWorldModel:
    """Load a checkpoint written by ``save_world_model`` onto ``device``, in eval mode.

    ``expected_*`` are what the caller will feed the model (its env's action dimension, state dimension and image
    side); a checkpoint built for something else is refused. ``require`` names components that must be present.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    payload = read_config(directory)
    components: dict[str, Any] = payload["components"]
    missing = [name for name in require if name not in components]
    if missing:
        raise CheckpointError(f"{config_path}: checkpoint has no {missing} (it holds {sorted(components)})")

    modules = {name: _build(name, cfg, config_path) for name, cfg in components.items()}
    # The pixel model carries its own action/state dims and image size, as the DiT and tokenizer do.
    dit_cfg = modules["dit"].cfg if "dit" in modules else modules["pixel"].cfg if "pixel" in modules else None
    tok_cfg = (
        modules["tokenizer"].cfg
        if "tokenizer" in modules
        else modules["pixel"].cfg
        if "pixel" in modules
        else None
    )
    if expected_action_dim is not None and dit_cfg is not None and dit_cfg.action_dim != expected_action_dim:
        raise CheckpointError(
            f"{directory}: the world model takes {dit_cfg.action_dim}-D actions but the caller provides "
            f"{expected_action_dim}-D actions"
        )
    if expected_state_dim is not None and dit_cfg is not None and dit_cfg.state_dim != expected_state_dim:
        raise CheckpointError(
            f"{directory}: the world model predicts {dit_cfg.state_dim}-D states but the caller expects "
            f"{expected_state_dim}-D states"
        )
    if expected_image_size is not None and tok_cfg is not None and tok_cfg.image_size != expected_image_size:
        raise CheckpointError(
            f"{directory}: the world model was built for {tok_cfg.image_size}x{tok_cfg.image_size} frames but the "
            f"caller provides {expected_image_size}x{expected_image_size}"
        )

    weights_path = directory / WEIGHTS_FILE
    tensors, metadata = _read_weights(weights_path)
    recorded = payload.get("weights_sha256")
    if recorded is not None and recorded != sha256_of_file(weights_path):
        raise CheckpointError(
            f"{weights_path}: SHA-256 differs from the one recorded in {CONFIG_FILE} (damaged or replaced file)"
        )
    stored_hash = metadata.get("config_sha256")
    if stored_hash != _config_hash(components):
        raise CheckpointError(
            f"{config_path} does not belong to {weights_path} (config hash differs); export both files together"
        )
    for name, module in modules.items():
        expected = module.state_dict()
        prefix = name + "."
        got = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        problems = [f"missing {k}" for k in expected if k not in got]
        problems += [f"unexpected {k}" for k in got if k not in expected]
        problems += [
            f"{k}: {tuple(got[k].shape)} vs config {tuple(v.shape)}"
            for k, v in expected.items()
            if k in got and got[k].shape != v.shape
        ]
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            raise CheckpointError(
                f"{weights_path}: {name} weights do not match {CONFIG_FILE}: {'; '.join(problems[:3])}{more}"
            )
        module.load_state_dict(got, strict=True)
        module.to(device).eval()
    unclaimed = sorted(k for k in tensors if k.split(".", 1)[0] not in modules)
    if unclaimed:
        raise CheckpointError(f"{weights_path}: tensors for components not in {CONFIG_FILE}: {unclaimed[:3]}")
    return LoadedWorldModel(
        tokenizer=modules.get("tokenizer"),
        dit=modules.get("dit"),
        pixel=modules.get("pixel"),
        extra=payload.get("extra", {}),
    )


def release_resume(release: str | Path) -> dict[str, Any]:
    """The resume record a release (a world model's, or a value model's: both keep ``extra`` in config.json) keeps of
    its training, ``extra.training.resume``; empty for a release from before resumes were recorded, or one that no
    `dojo-bench train` run wrote."""
    try:
        record = json.loads((Path(release) / "config.json").read_text())["extra"]["training"]["resume"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return record if isinstance(record, dict) else {}
