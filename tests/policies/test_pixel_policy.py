"""PixelPolicy: config rules, the action queue, and a few training steps that lower the loss."""

from __future__ import annotations

import pytest
import torch

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from policies.pixel_policy import PixelConfig, PixelPolicy, make_pixel_policy


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="n_action_steps"):
        PixelConfig(device="cpu", chunk_size=4, n_action_steps=5)
    with pytest.raises(ValueError, match="loss"):
        PixelConfig(device="cpu", loss="huber")


def test_chunk_shapes_and_action_queue(tiny):
    torch.manual_seed(0)
    policy = PixelPolicy(PixelConfig(device="cpu", **tiny))
    batch = {OBS_IMAGE: torch.rand(2, 3, 96, 96), OBS_STATE: torch.rand(2, 2) * 2 - 1}
    chunk = policy.predict_action_chunk(batch)
    assert chunk.shape == (2, tiny["chunk_size"], 2)
    policy.reset()
    actions = [policy.select_action(batch) for _ in range(tiny["n_action_steps"])]
    torch.testing.assert_close(
        torch.stack(actions, dim=1), chunk[:, : tiny["n_action_steps"]], rtol=0, atol=0
    )
    # The queue is empty now: a different observation makes a new chunk.
    other = {OBS_IMAGE: torch.rand(2, 3, 96, 96), OBS_STATE: batch[OBS_STATE]}
    torch.testing.assert_close(
        policy.select_action(other), policy.predict_action_chunk(other)[:, 0], rtol=0, atol=0
    )


def test_inference_noise_makes_it_stochastic(tiny):
    torch.manual_seed(0)
    policy = PixelPolicy(PixelConfig(device="cpu", inference_noise_std=0.1, **tiny))
    batch = {OBS_IMAGE: torch.rand(1, 3, 96, 96), OBS_STATE: torch.zeros(1, 2)}
    assert not torch.equal(policy.predict_action_chunk(batch), policy.predict_action_chunk(batch))
    noise = torch.zeros(1, tiny["chunk_size"], 2)
    torch.testing.assert_close(policy.predict_action_chunk(batch, noise=noise), policy._predict(batch))


@pytest.mark.parametrize(("loss", "encoder"), [("mse", "flat"), ("l1", "flat"), ("mse", "keypoints")])
def test_a_few_training_steps_lower_the_loss(stats, tiny, loss, encoder):
    torch.manual_seed(0)
    policy, preprocessor, _ = make_pixel_policy(stats, device="cpu", loss=loss, encoder=encoder, **tiny)
    policy.train()
    # A tiny synthetic batch in env units, normalised by the policy's own preprocessor: the expert moves
    # from the agent position towards a fixed goal.
    state = torch.rand(8, 2) * 512
    goal = torch.tensor([256.0, 300.0])
    steps = torch.linspace(0.1, 1.0, tiny["chunk_size"])[None, :, None]
    action = state[:, None] + (goal - state)[:, None] * steps  # (B, chunk_size, 2)
    is_pad = torch.zeros(8, tiny["chunk_size"], dtype=torch.bool)
    is_pad[0, -2:] = True
    batch = preprocessor({OBS_IMAGE: torch.rand(8, 3, 96, 96), OBS_STATE: state, ACTION: action})
    batch["action_is_pad"] = is_pad
    assert batch[ACTION].abs().max() <= 1.0  # min/max normalisation to [-1, 1]

    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=3e-3)
    first, info = policy(batch)
    assert set(info) == {f"{loss}_loss"}
    for _ in range(30):
        loss_value, _ = policy(batch)
        optimizer.zero_grad()
        loss_value.backward()
        optimizer.step()
    last, _ = policy(batch)
    assert last.item() < 0.5 * first.item()


@pytest.mark.parametrize(("num_modes", "near_a_mode"), [(1, False), (2, True)])
def test_modes_pick_one_alternative_instead_of_the_mean(tiny, num_modes, near_a_mode):
    """The same observation is demonstrated going left (-0.8) half of the time and right (+0.8) otherwise.
    Plain regression learns the mean (standing still); two modes learn both and execute one of them."""
    torch.manual_seed(0)
    policy = PixelPolicy(PixelConfig(device="cpu", num_modes=num_modes, **tiny))
    policy.train()
    image, state = torch.rand(1, 3, 96, 96).expand(16, -1, -1, -1), torch.zeros(16, 2)
    sign = torch.tensor([-1.0, 1.0]).repeat(8)[:, None, None]
    batch = {OBS_IMAGE: image, OBS_STATE: state, ACTION: 0.8 * sign.expand(16, tiny["chunk_size"], 2)}
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-2)
    for _ in range(150):
        loss, info = policy(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert ("mode_loss" in info) is (num_modes > 1)
    chunk = policy.predict_action_chunk({OBS_IMAGE: image[:1], OBS_STATE: state[:1]})
    distance_to_a_mode = (chunk.abs() - 0.8).abs().max().item()
    assert (distance_to_a_mode < 0.1) is near_a_mode, chunk


def test_num_modes_must_be_positive():
    with pytest.raises(ValueError, match="num_modes"):
        PixelConfig(device="cpu", num_modes=0)


def test_random_shift_moves_whole_images_by_at_most_pad():
    from policies.pixel_policy import random_shift

    torch.manual_seed(0)
    image = torch.zeros(6, 3, 16, 16)
    image[:, :, 8, 8] = 1.0  # one bright pixel in the middle
    shifted = random_shift(image, 2)
    assert shifted.shape == image.shape
    for one in shifted:
        ys, xs = torch.nonzero(one[0], as_tuple=True)
        assert len(ys) == 1 and abs(int(ys[0]) - 8) <= 2 and abs(int(xs[0]) - 8) <= 2
        torch.testing.assert_close(one[1:], one[:1].expand(2, -1, -1))  # channels move together
    assert len({tuple(torch.nonzero(one[0])[0].tolist()) for one in shifted}) > 1  # not all the same shift


def test_random_shift_must_not_be_negative():
    with pytest.raises(ValueError, match="random_shift"):
        PixelConfig(device="cpu", random_shift=-1)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"encoder": "resnet"}, "encoder must be one of"),
        ({"num_keypoints": 0}, "num_keypoints"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of"),
        ({"lr_decay_steps": -1}, "lr_decay_steps"),
        ({"lr_final_ratio": 0.0}, "lr_final_ratio"),
        ({"ema_decay": 1.0}, "ema_decay"),
    ],
)
def test_encoder_schedule_and_ema_settings_are_checked(setting, message):
    with pytest.raises(ValueError, match=message):
        PixelConfig(device="cpu", **setting)


def test_keypoint_encoder_reads_positions(tiny):
    """encoder="keypoints": features are num_keypoints (x, y) positions, so moving a bright square moves them."""
    torch.manual_seed(0)
    policy = PixelPolicy(PixelConfig(device="cpu", encoder="keypoints", num_keypoints=5, **tiny))
    encoder = policy.encoder
    assert encoder.proj.in_features == 10
    left, right = torch.zeros(1, 3, 96, 96), torch.zeros(1, 3, 96, 96)
    left[..., 40:56, 8:24], right[..., 40:56, 72:88] = 1.0, 1.0
    with torch.no_grad():
        points = [
            encoder.keypoints(encoder.convs(image * 2 - 1)) for image in (left, right)
        ]  # (1, 5, 2) each
    assert points[0].shape == (1, 5, 2) and points[0].abs().max() <= 1.0
    assert (points[1][..., 0] - points[0][..., 0]).mean() > 0.05  # x moved right on average


def test_cosine_schedule_warms_up_then_decays_to_the_final_ratio():
    constant = PixelConfig(device="cpu")
    assert constant.get_scheduler_preset() is None
    with pytest.raises(ValueError, match="lr_decay_steps"):
        PixelConfig(device="cpu", lr_schedule="cosine").get_scheduler_preset()
    config = PixelConfig(
        device="cpu", lr_schedule="cosine", lr_warmup_steps=10, lr_decay_steps=100, lr_final_ratio=0.1
    )
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.optimizer_lr)
    scheduler = config.get_scheduler_preset().build(optimizer, 100)
    rates = []
    for _ in range(120):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] < 0.2 * config.optimizer_lr  # warming up
    assert 0.95 * config.optimizer_lr < max(rates) <= config.optimizer_lr
    assert rates[60] < rates[30] < rates[11]  # decaying
    assert rates[-1] == pytest.approx(0.1 * config.optimizer_lr, rel=1e-6)  # held at the floor
