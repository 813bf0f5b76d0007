import time
from dataclasses import replace

import pytest
import torch

from world_model.dit import DiT, DiTConfig, chunk_actions, chunk_states, count_parameters, make_dit_config


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """adaLN-Zero makes a fresh DiT output exactly 0 whatever its inputs; random weights make tests meaningful."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def _inputs(cfg: DiTConfig, num_latent_frames: int, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(
        batch, num_latent_frames, cfg.latent_channels, cfg.latent_size, cfg.latent_size, generator=g
    )
    t = torch.rand(batch, generator=g)
    actions = torch.randn(
        batch, (num_latent_frames - 1) * cfg.action_chunk_size + 1, cfg.action_dim, generator=g
    )
    return x, t, actions


@pytest.mark.parametrize("chunk", [1, 4])
@pytest.mark.parametrize("injection", ["chunked", "global", "none"])
@pytest.mark.parametrize("attention", ["bidirectional", "frame_causal"])
def test_output_shapes(tiny_dit_config, chunk, injection, attention):
    cfg = replace(tiny_dit_config, action_chunk_size=chunk, action_injection=injection, attention=attention)
    model = DiT(cfg)
    x, t, actions = _inputs(cfg, 4)
    out = model(x, t, actions, num_context_frames=1)
    assert out.velocity.shape == x.shape
    assert out.state.shape == (2, 4, chunk, cfg.state_dim)


def test_fresh_model_outputs_zero_velocity(tiny_dit_config):
    """adaLN-Zero + zero final layer: the untrained model predicts v = 0."""
    model = DiT(tiny_dit_config)
    x, t, actions = _inputs(tiny_dit_config, 3)
    assert torch.equal(model(x, t, actions, 1).velocity, torch.zeros_like(x))


def test_tiny_forward_backward_is_fast(tiny_dit_config):
    cfg = replace(tiny_dit_config, action_chunk_size=4, attention="frame_causal")
    model = DiT(cfg)
    x, t, actions = _inputs(cfg, 4, batch=4)
    model(x, t, actions, 1).velocity.sum().backward()  # warm-up
    timings = []
    for _ in range(3):  # best of 3: the CPU may be shared with other jobs
        start = time.perf_counter()
        out = model(x, t, actions, 1)
        (out.velocity.square().mean() + out.state.square().mean()).backward()
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.5, timings


def test_presets():
    assert count_parameters(DiT(make_dit_config("tiny"))) < 1_000_000
    default = count_parameters(DiT(make_dit_config("default")))
    assert 20_000_000 <= default <= 50_000_000, default
    with pytest.raises(ValueError, match="unknown DiT size"):
        make_dit_config("huge")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent_size": 12, "patch_size": 5}, "not divisible by patch_size"),
        ({"action_injection": "film"}, "action_injection"),
        ({"attention": "causal"}, "attention"),
        ({"hidden_dim": 66, "num_heads": 4}, "divisible by num_heads"),
        ({"action_dim": 0}, "action_dim"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiTConfig(**kwargs)


def test_chunk_actions_and_states_layout():
    actions = torch.arange(9.0).view(1, 9, 1)
    chunks = chunk_actions(actions, num_latent_frames=3, chunk_size=4)
    assert chunks[..., 0].tolist() == [[[0, 0, 0, 0], [0, 1, 2, 3], [4, 5, 6, 7]]]  # action 8 is unused
    states = torch.arange(9.0).view(1, 9, 1)
    assert chunk_states(states, 4)[..., 0].tolist() == [[[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]]
    assert chunk_actions(actions[:, :3], 3, 1)[..., 0].tolist() == [[[0], [0], [1]]]
    with pytest.raises(ValueError, match="T_a >= 8"):
        chunk_actions(actions[:, :7], 3, 4)


@pytest.mark.parametrize("chunk", [1, 4])
def test_frame_causal_chunked_ignores_later_actions_and_frames(tiny_dit_config, chunk):
    """Perturbing the actions of chunk k (and the latent frames from k on) leaves frames < k exactly unchanged."""
    cfg = replace(
        tiny_dit_config, action_chunk_size=chunk, action_injection="chunked", attention="frame_causal"
    )
    model = _randomize(DiT(cfg))
    x, t, actions = _inputs(cfg, 5)
    k = 3  # latent frame whose chunk we perturb: actions[(k-1)*c:]
    perturbed_actions = actions.clone()
    perturbed_actions[:, (k - 1) * chunk :] += 1.0
    perturbed_x = x.clone()
    perturbed_x[:, k + 1 :] += 1.0
    with torch.no_grad():
        base = model(x, t, actions, 1)
        moved = model(x, t, perturbed_actions, 1)
        moved_frames = model(perturbed_x, t, actions, 1)
    assert torch.equal(base.velocity[:, :k], moved.velocity[:, :k])
    assert torch.equal(base.state[:, :k], moved.state[:, :k])
    assert not torch.allclose(base.velocity[:, k], moved.velocity[:, k])  # the test can see a change
    assert torch.equal(base.velocity[:, : k + 1], moved_frames.velocity[:, : k + 1])
    assert not torch.allclose(base.velocity[:, k + 1], moved_frames.velocity[:, k + 1])


@pytest.mark.parametrize(
    ("injection", "attention"), [("global", "frame_causal"), ("chunked", "bidirectional")]
)
def test_non_causal_variants_do_see_later_actions(tiny_dit_config, injection, attention):
    """The ablations leak the future into earlier frames: proof the causality test above can fail."""
    cfg = replace(tiny_dit_config, action_chunk_size=1, action_injection=injection, attention=attention)
    model = _randomize(DiT(cfg))
    x, t, actions = _inputs(cfg, 4)
    perturbed = actions.clone()
    perturbed[:, 2:] += 1.0
    with torch.no_grad():
        a, b = model(x, t, actions, 1).velocity, model(x, t, perturbed, 1).velocity
    assert not torch.allclose(a[:, 1], b[:, 1])


def test_context_frames_get_zero_action_embedding(tiny_dit_config):
    cfg = replace(tiny_dit_config, action_chunk_size=1, action_injection="chunked")
    model = _randomize(DiT(cfg))
    emb = model.embed_actions(torch.randn(2, 5, 2), num_frames=4, num_context_frames=2)
    assert torch.equal(emb[:, :2], torch.zeros_like(emb[:, :2]))
    assert emb[:, 2:].abs().sum() > 0
    # Changing the action that produced a context frame changes nothing anywhere.
    x, t, actions = _inputs(cfg, 4)
    perturbed = actions.clone()
    perturbed[:, 0] += 1.0  # produces frame 1, a context frame
    with torch.no_grad():
        assert torch.equal(model(x, t, actions, 2).velocity, model(x, t, perturbed, 2).velocity)


def test_rejects_wrong_shapes(tiny_dit_config):
    model = DiT(tiny_dit_config)
    x, t, actions = _inputs(tiny_dit_config, 3)
    with pytest.raises(ValueError, match="latents must be"):
        model(x[:, :, :2], t, actions, 1)
    with pytest.raises(ValueError, match="action_dim=2"):
        model(x, t, torch.zeros(2, 3, 5), 1)
    with pytest.raises(ValueError, match="num_context_frames"):
        model(x, t, actions, 4)
