from dataclasses import replace

import pytest
import torch

from world_model.dit import DiT, DiTOutput
from world_model.flow import (
    FlowConfig,
    RectifiedFlow,
    add_noise,
    flow_matching_loss,
    make_relative_actions,
    sample_timesteps,
    shift_time,
    temporal_consistency_loss,
    velocity_target,
)


def test_interpolation_endpoints_and_velocity():
    x0, noise = torch.randn(2, 3, 4, 5, 5), torch.randn(2, 3, 4, 5, 5)
    assert torch.equal(add_noise(x0, noise, torch.zeros(2)), x0)
    assert torch.equal(add_noise(x0, noise, torch.ones(2)), noise)
    t = torch.tensor([0.25, 0.5])
    expected = t.view(2, 1, 1, 1, 1) * noise + (1 - t.view(2, 1, 1, 1, 1)) * x0
    assert torch.allclose(add_noise(x0, noise, t), expected)
    # v is the time derivative of x_t
    dt = 1e-3
    finite_diff = (add_noise(x0, noise, t + dt) - add_noise(x0, noise, t)) / dt
    assert torch.allclose(finite_diff, velocity_target(x0, noise), atol=1e-2)
    # per-frame times (B, T)
    t_frames = torch.rand(2, 3)
    assert add_noise(x0, noise, t_frames).shape == x0.shape


def test_flow_loss_ignores_context_frames():
    v = torch.randn(2, 4, 3, 2, 2)
    pred = v.clone()
    pred[:, :2] += 100.0  # errors on context frames only
    assert flow_matching_loss(pred, v, num_context_frames=2) == 0
    pred[:, 2] += 1.0
    assert torch.isclose(
        flow_matching_loss(pred, v, 2), torch.tensor(0.5)
    )  # half the predicted elements off by 1


def test_temporal_loss_differences_along_time_not_channels():
    """An error constant over time but varying over channels has no temporal component, and vice versa.

    A loss that differenced along the channel axis would get both cases backwards."""
    b, t, c, h, w = 2, 4, 3, 2, 2
    v = torch.randint(-4, 5, (b, t, c, h, w)).float()  # integers: the differences below are exact
    varies_over_channels = torch.arange(c, dtype=torch.float32).view(1, 1, c, 1, 1).expand(b, t, c, h, w)
    assert temporal_consistency_loss(v + varies_over_channels, v, num_context_frames=1) == 0
    varies_over_time = torch.arange(t, dtype=torch.float32).view(1, t, 1, 1, 1).expand(b, t, c, h, w)
    # Hand-computed: predicted frames 1..3 have errors 1, 2, 3; consecutive differences are all 1 -> mean 1.
    assert temporal_consistency_loss(v + varies_over_time, v, num_context_frames=1) == 1.0
    # Context frame 0 (error 0) is excluded: with it the differences would still be 1, so check with a jump.
    jump = torch.zeros(b, t, c, h, w)
    jump[:, 0] = 5.0
    assert temporal_consistency_loss(v + jump, v, num_context_frames=1) == 0

    def along_channels(pred, target):  # what the release does on (B, C, T, H, W) data
        return torch.nn.functional.mse_loss(pred[:, 1:].diff(dim=2), target[:, 1:].diff(dim=2))

    assert along_channels(v + varies_over_channels, v) == 1.0
    assert along_channels(v + varies_over_time, v) == 0


def test_temporal_loss_needs_two_predicted_frames():
    v = torch.randn(1, 2, 3, 2, 2)
    assert temporal_consistency_loss(v + 1, v, num_context_frames=1) == 0


def test_relative_actions_hand_computed():
    actions = torch.tensor([[[1.0], [2.0], [3.0], [4.0], [5.0]]])  # (1, 5, 1)
    states = torch.tensor([[[10.0], [20.0], [30.0], [40.0], [50.0]]])
    # chunk 2: actions 0,1 relative to state 0; actions 2,3 to state 2; action 4 to state 4
    assert make_relative_actions(actions, states, 2)[0, :, 0].tolist() == [-9, -8, -27, -26, -45]
    assert make_relative_actions(actions, states, 1)[0, :, 0].tolist() == [-9, -18, -27, -36, -45]
    assert make_relative_actions(actions, states, 4)[0, :, 0].tolist() == [-9, -8, -7, -6, -45]
    with pytest.raises(ValueError, match="same space"):
        make_relative_actions(actions, torch.zeros(1, 5, 2), 1)


def test_timestep_sampling_and_shift():
    g = torch.Generator().manual_seed(0)
    for sampling in ("logit_normal", "uniform"):
        t = sample_timesteps(1000, FlowConfig(timestep_sampling=sampling), generator=g)
        assert t.shape == (1000,) and (t > 0).all() and (t < 1).all()
        assert abs(t.mean().item() - 0.5) < 0.05
    grid = torch.linspace(0, 1, 11)
    assert torch.equal(shift_time(grid, 1.0), grid)
    shifted = shift_time(grid, 5.0)
    assert shifted[0] == 0 and shifted[-1] == 1
    assert (shifted[1:-1] > grid[1:-1]).all() and (shifted.diff() > 0).all()
    assert torch.isclose(shift_time(torch.tensor(0.5), 5.0), torch.tensor(5 / 6))
    with pytest.raises(ValueError, match="timestep_sampling"):
        FlowConfig(timestep_sampling="cosine")


class _Recorder(torch.nn.Module):
    """Records its inputs; predicts v = 0 and state 0."""

    def forward(self, x, t, actions, num_context_frames):
        self.seen = (x.clone(), t.clone(), num_context_frames)
        return DiTOutput(velocity=torch.zeros_like(x), state=torch.zeros(x.shape[0], x.shape[1], 1, 2))


def test_training_losses_keep_context_clean_and_weight_terms():
    x0 = torch.randn(3, 4, 2, 4, 4)
    model = _Recorder()
    losses = RectifiedFlow(FlowConfig()).training_losses(
        model,
        x0,
        torch.zeros(3, 4, 2),
        1,
        state_target=torch.ones(3, 4, 1, 2),
        generator=torch.Generator().manual_seed(0),
    )
    x_seen, t_seen, n = model.seen
    assert n == 1 and t_seen.shape == (3,)
    assert torch.equal(x_seen[:, :1], x0[:, :1])
    assert not torch.equal(x_seen[:, 1:], x0[:, 1:])
    assert losses["state"] == 1.0
    assert torch.isclose(losses["loss"], losses["flow"] + 0.1 * losses["temporal"] + 0.1 * losses["state"])
    off = RectifiedFlow(FlowConfig(use_temporal_loss=False)).training_losses(
        model, x0, torch.zeros(3, 4, 2), 1
    )
    assert off["temporal"] == 0 and off["state"] == 0


def test_training_losses_backpropagate_through_dit(tiny_dit_config):
    model = DiT(replace(tiny_dit_config, action_chunk_size=1))
    x0 = torch.randn(2, 3, 4, 12, 12)
    losses = RectifiedFlow(FlowConfig()).training_losses(model, x0, torch.randn(2, 3, 2), 1)
    losses["loss"].backward()
    assert model.final.linear.weight.grad.abs().sum() > 0
