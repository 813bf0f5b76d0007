from dataclasses import replace

import pytest
import torch

from world_model.dit import DiT, DiTOutput
from world_model.sampler import FlowSampler, SamplerConfig, time_grid


class OracleVelocity(torch.nn.Module):
    """The exact velocity field of a point-mass data distribution at ``target``: v = (x_t - x0) / t."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target
        self.calls = 0

    def forward(self, x, t, actions, num_context_frames):
        self.calls += 1
        n = num_context_frames
        tb = t.view(-1, 1, 1, 1, 1)
        v = torch.zeros_like(x)
        v[:, n:] = (x[:, n:] - self.target) / tb
        return DiTOutput(velocity=v, state=torch.zeros(x.shape[0], x.shape[1], 1, 2))


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_oracle_flow_lands_on_data(method):
    target = torch.randn(3, 2, 4, 6, 6)
    context = torch.randn(3, 1, 4, 6, 6)
    model = OracleVelocity(target)
    cfg = SamplerConfig(method=method, num_steps=7, shift=5.0)
    out = FlowSampler(cfg).sample(
        model, context, torch.zeros(3, 3, 2), 2, generator=torch.Generator().manual_seed(0)
    )
    assert out.latents.shape == target.shape
    assert out.states.shape == (3, 2, 1, 2)
    assert torch.allclose(out.latents, target, atol=1e-4)
    assert model.calls == cfg.num_function_evaluations == (7 if method == "euler" else 13)


def test_time_grid():
    grid = time_grid(35, 5.0)
    assert grid.shape == (36,) and grid[0] == 1 and grid[-1] == 0
    assert (grid.diff() < 0).all()
    assert torch.allclose(time_grid(4, 1.0), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))


def test_seeded_and_batched(tiny_dit_config):
    torch.manual_seed(0)
    model = DiT(replace(tiny_dit_config, action_chunk_size=1))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    context = torch.randn(4, 1, 4, 12, 12)
    actions = torch.randn(4, 3, 2)
    sampler = FlowSampler(SamplerConfig(num_steps=3))
    a = sampler.sample(model, context, actions, 2, generator=torch.Generator().manual_seed(1))
    b = sampler.sample(model, context, actions, 2, generator=torch.Generator().manual_seed(1))
    c = sampler.sample(model, context, actions, 2, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.latents, b.latents)
    assert not torch.equal(a.latents, c.latents)
    assert a.latents.shape == (4, 2, 4, 12, 12)
    # Batched sampling equals sampling each item alone with the same noise (bidirectional attention is per clip).
    single = sampler.sample(model, context[:1], actions[:1], 2, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(single.latents[0], a.latents[0], atol=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match="method"):
        SamplerConfig(method="dpm")
    with pytest.raises(ValueError, match="num_steps"):
        SamplerConfig(num_steps=0)
    assert SamplerConfig().num_steps == 35 and SamplerConfig().shift == 5.0
