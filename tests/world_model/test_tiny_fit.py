"""A tiny DiT learns action-driven motion in the moving-square world and beats copying the last frame.

The tokenizer is frozen at its random initialisation: its posterior mean is still a fixed, translation-equivariant
function of the frame, so the DiT's job (predict the next latent frame from the current one and the action) is the
same as with a trained tokenizer, minus tokenizer training time. Errors are therefore measured in latent space.
"""

import time

import pytest
import torch

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from world_model.batch import frames_to_model
from world_model.dit import DiT, make_dit_config
from world_model.flow import FlowConfig, RectifiedFlow, make_relative_actions
from world_model.lit_world_model import estimate_latent_scale
from world_model.sampler import FlowSampler, SamplerConfig
from world_model.tokenizer import TokenizerConfig, VideoTokenizer

MAX_STEP = (
    0.5  # the square moves up to a quarter of the image per step: copying the last frame is clearly wrong
)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the fastest choice on a small shared CPU
    yield
    torch.set_num_threads(threads)


def test_tiny_world_model_beats_copy_last_frame(moving_squares, one_thread):
    start = time.perf_counter()
    torch.manual_seed(0)
    tokenizer = VideoTokenizer(TokenizerConfig(latent_channels=4, base_channels=8, num_res_blocks=0)).eval()
    train = moving_squares(256, 3, seed=1, max_step=MAX_STEP)
    held_out = moving_squares(32, 3, seed=2, max_step=MAX_STEP)
    scale = estimate_latent_scale(tokenizer, train[OBS_IMAGE][:64])

    def prepare(batch):
        with torch.no_grad():
            latents = tokenizer.encode(frames_to_model(batch[OBS_IMAGE])).mean * scale  # (B, 3, 4, 12, 12)
        return latents, make_relative_actions(batch[ACTION], batch[OBS_STATE], 1) / MAX_STEP

    train_latents, train_actions = prepare(train)
    test_latents, test_actions = prepare(held_out)

    dit = DiT(make_dit_config("tiny", latent_channels=4, latent_size=12, max_latent_frames=4))
    flow = RectifiedFlow(FlowConfig())
    optimizer = torch.optim.AdamW(dit.parameters(), lr=3e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(0, train_latents.shape[0], (32,), generator=generator)
        loss = flow.training_losses(dit, train_latents[idx], train_actions[idx], 1, generator=generator)[
            "loss"
        ]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    dit.eval()
    sampler = FlowSampler(SamplerConfig(num_steps=10, shift=5.0))

    def rollout_mse(actions):
        out = sampler.sample(dit, test_latents[:, :1], actions, 2, generator=torch.Generator().manual_seed(0))
        return (out.latents - test_latents[:, 1:]).pow(2).mean().item()

    model_mse = rollout_mse(test_actions)
    copy_last_mse = (test_latents[:, :1] - test_latents[:, 1:]).pow(2).mean().item()
    # Actions of other clips: the same start frames, wrong motion. Worse means the model follows the actions.
    shuffled = torch.randperm(32, generator=torch.Generator().manual_seed(5))
    wrong_action_mse = rollout_mse(test_actions[shuffled])
    elapsed = time.perf_counter() - start
    print(
        f"latent MSE model {model_mse:.3f}, copy-last {copy_last_mse:.3f}, wrong actions {wrong_action_mse:.3f}, "
        f"{elapsed:.1f}s"
    )
    assert model_mse < 0.85 * copy_last_mse
    assert model_mse < 0.85 * wrong_action_mse
