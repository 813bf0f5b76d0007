from dataclasses import replace

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from world_model.checkpoint import load_world_model
from world_model.flow import FlowConfig
from world_model.lit_tokenizer import LitTokenizer, LitTokenizerConfig
from world_model.lit_world_model import LitWorldModel, estimate_latent_scale
from world_model.model import WorldModelConfig
from world_model.sampler import SamplerConfig
from world_model.tokenizer import VideoTokenizer


class ClipDataset(Dataset):
    """Per-clip view of a batch dict made by the moving-squares fixture."""

    def __init__(self, batch: dict[str, torch.Tensor]) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return self.batch[ACTION].shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.batch.items()}


def _trainer() -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        fast_dev_run=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_lit_tokenizer_fast_dev_run(moving_squares, tiny_tokenizer_config):
    cfg = LitTokenizerConfig(tokenizer=replace(tiny_tokenizer_config, temporal_compression=4))
    module = LitTokenizer(cfg)
    loader = DataLoader(ClipDataset(moving_squares(4, 5, seed=0)), batch_size=2)
    before = [p.detach().clone() for p in module.parameters()]
    _trainer().fit(module, loader, loader)
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize("compression", [1, 4])
def test_lit_world_model_fast_dev_run(
    moving_squares, tiny_tokenizer_config, tiny_dit_config, compression, tmp_path
):
    tokenizer = VideoTokenizer(replace(tiny_tokenizer_config, temporal_compression=compression))
    cfg = WorldModelConfig(
        dit=replace(tiny_dit_config, action_chunk_size=compression, attention="frame_causal"),
        sampler=SamplerConfig(num_steps=2),
        num_context_frames=1,
    )
    module = LitWorldModel(cfg, tokenizer)
    num_frames = 1 + 2 * compression
    loader = DataLoader(ClipDataset(moving_squares(4, num_frames, seed=1)), batch_size=2)
    tokenizer_before = [p.detach().clone() for p in tokenizer.parameters()]
    _trainer().fit(module, loader, loader)
    # The tokenizer is frozen; only the DiT trains.
    assert all(torch.equal(a, b) for a, b in zip(tokenizer_before, tokenizer.parameters(), strict=True))
    assert module.dit.final.linear.weight.abs().sum() > 0

    batch = next(iter(loader))
    frames, states = module.predict(batch, generator=torch.Generator().manual_seed(0))
    assert frames.shape == (2, num_frames - 1, 3, 96, 96)
    assert states.shape == (2, num_frames - 1, 2)
    metrics = module.rollout_metrics(batch)
    assert set(metrics) == {"val/psnr", "val/psnr_copy_last", "val/state_mse"}

    loaded = load_world_model(
        module.export(tmp_path / "export"), expected_action_dim=2, expected_image_size=96
    )
    assert loaded.extra["world_model"]["num_context_frames"] == 1
    assert torch.equal(loaded.dit.final.linear.weight, module.dit.final.linear.weight)


def test_lit_world_model_rejects_incompatible_tokenizer(tiny_tokenizer_config, tiny_dit_config):
    tokenizer = VideoTokenizer(replace(tiny_tokenizer_config, temporal_compression=4))
    with pytest.raises(
        ValueError, match="action_chunk_size=1 must equal the tokenizer's temporal_compression=4"
    ):
        LitWorldModel(WorldModelConfig(dit=tiny_dit_config), tokenizer)
    with pytest.raises(ValueError, match="set dit.latent_channels=4"):
        LitWorldModel(
            WorldModelConfig(dit=replace(tiny_dit_config, latent_channels=8, action_chunk_size=4)),
            tokenizer,
        )
    with pytest.raises(ValueError, match="num_context_frames=2 must be 1 \\+ k\\*4"):
        LitWorldModel(
            WorldModelConfig(dit=replace(tiny_dit_config, action_chunk_size=4), num_context_frames=2),
            tokenizer,
        )


def test_lit_world_model_rejects_bad_batches(moving_squares, tiny_tokenizer_config, tiny_dit_config):
    module = LitWorldModel(
        WorldModelConfig(dit=tiny_dit_config, flow=FlowConfig()), VideoTokenizer(tiny_tokenizer_config)
    )
    batch = moving_squares(2, 3, seed=0)
    with pytest.raises(ValueError, match="action must be"):
        module.training_step({**batch, ACTION: batch[ACTION][..., :1]}, 0)
    with pytest.raises(ValueError, match="observation.image must be"):
        module.training_step({**batch, OBS_IMAGE: batch[OBS_IMAGE][..., :64, :64]}, 0)
    with pytest.raises(ValueError, match="missing key 'observation.state'"):
        module.training_step({k: v for k, v in batch.items() if k != OBS_STATE}, 0)


def test_estimate_latent_scale(moving_squares, tiny_tokenizer_config):
    tokenizer = VideoTokenizer(tiny_tokenizer_config)
    images = moving_squares(2, 2, seed=0)[OBS_IMAGE]
    scale = estimate_latent_scale(tokenizer, images)
    latents = tokenizer.encode(images.float() / 127.5 - 1).mean * scale
    assert torch.isclose(latents.std(), torch.tensor(1.0), atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lit_world_model_bf16_autocast_on_cuda(moving_squares, tiny_tokenizer_config, tiny_dit_config):
    """The same code on CUDA runs under bf16 autocast and returns float32 losses and frames."""
    tokenizer = VideoTokenizer(replace(tiny_tokenizer_config, temporal_compression=4))
    cfg = WorldModelConfig(
        dit=replace(tiny_dit_config, action_chunk_size=4), sampler=SamplerConfig(num_steps=2)
    )
    module = LitWorldModel(cfg, tokenizer).to("cuda")
    batch = {k: v.to("cuda") for k, v in moving_squares(2, 9, seed=0).items()}
    loss = module.training_step(batch, 0)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    frames, states = module.predict(batch, generator=torch.Generator().manual_seed(0))
    assert frames.device.type == "cuda" and frames.dtype == torch.float32
    assert frames.shape == (2, 8, 3, 96, 96) and states.shape == (2, 8, 2)
