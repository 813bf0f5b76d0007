"""PolicyEnsemble: proposal shapes, stochastic members, reproducibility, refusal of mismatched members."""

from __future__ import annotations

import pytest
import torch
from lerobot.configs.types import FeatureType, PolicyFeature

from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import ACTION
from policies.ensemble import PolicyEnsemble
from policies.loading import load_policy


def test_proposals_shape_and_order(make_checkpoint, observation):
    deterministic = [load_policy(make_checkpoint(f"det{i}", seed=i)[0]) for i in range(2)]
    noisy = load_policy(make_checkpoint("noisy", seed=5, inference_noise_std=0.2)[0])
    ensemble = PolicyEnsemble([deterministic[0], noisy, deterministic[1]], samples_per_stochastic_member=3)

    assert ensemble.proposal_members == [0, 1, 1, 1, 2]
    proposals = ensemble.propose(observation, seed=7)
    assert proposals.shape == (3, 5, 4, 2)  # (B, N, chunk_size, action_dim)
    assert torch.isfinite(proposals).all()

    # Deterministic members give exactly their own chunk; the stochastic one gives distinct samples.
    torch.testing.assert_close(proposals[:, 0], deterministic[0].predict_chunk(observation), rtol=0, atol=0)
    torch.testing.assert_close(proposals[:, 4], deterministic[1].predict_chunk(observation), rtol=0, atol=0)
    samples = proposals[:, 1:4]
    assert not torch.equal(samples[:, 0], samples[:, 1]) and not torch.equal(samples[:, 1], samples[:, 2])


def test_proposals_are_reproducible_and_leave_the_global_rng_alone(make_checkpoint, observation):
    noisy = load_policy(make_checkpoint("noisy", inference_noise_std=0.2)[0])
    ensemble = PolicyEnsemble([noisy], samples_per_stochastic_member=2)
    torch.manual_seed(123)
    first = ensemble.propose(observation, seed=1)
    after = torch.rand(1)
    torch.manual_seed(123)
    again = ensemble.propose(observation, seed=1)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    torch.testing.assert_close(torch.rand(1), after, rtol=0, atol=0)
    assert not torch.equal(first, ensemble.propose(observation, seed=2))


def test_mismatched_members_are_refused(make_checkpoint):
    base = load_policy(make_checkpoint("base")[0])
    short = load_policy(make_checkpoint("short", n_action_steps=2)[0])
    with pytest.raises(
        DojoError, match=r"^ensemble members disagree on chunk size: base has 4, short has 2$"
    ):
        PolicyEnsemble([base, short])

    three_d = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(3,))}  # another robot's action space
    wide = load_policy(make_checkpoint("wide", output_features=three_d)[0])
    with pytest.raises(
        DojoError, match=r"^ensemble members disagree on action dimension: base has 2, wide has 3$"
    ):
        PolicyEnsemble([base, wide])

    with pytest.raises(DojoError, match="at least one member"):
        PolicyEnsemble([])


def test_a_stock_diffusion_member_samples_without_touching_its_episode_state(tmp_path, observation):
    """lerobot's DiffusionPolicy keeps an observation history; proposals must not advance or erase it."""
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
    from policies.loading import save_pretrained_model

    config = DiffusionConfig(
        device="cpu",
        pretrained_backbone_weights=None,  # nothing downloads
        down_dims=(8, 16),
        diffusion_step_embed_dim=16,
        n_groups=4,
        spatial_softmax_num_keypoints=8,
        num_inference_steps=2,
        horizon=8,
        n_action_steps=4,
        crop_shape=None,
        input_features={
            OBS_IMAGE: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 96, 96)),
            OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(2,)),
        },
        output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(2,))},
    )
    arena = {"min": torch.zeros(2), "max": torch.full((2,), 512.0)}
    unit = {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)}
    stats = {OBS_STATE: dict(arena), ACTION: dict(arena), OBS_IMAGE: unit}
    torch.manual_seed(0)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    folder = save_pretrained_model(
        DiffusionPolicy(config), preprocessor, postprocessor, tmp_path / "diffusion"
    )
    member = load_policy(folder)
    assert member.stochastic and member.chunk_size == 4

    member.select_action(observation)  # mid-episode: one observation in the history, 3 actions queued
    before = {key: list(queue) for key, queue in member.policy._queues.items()}
    ensemble = PolicyEnsemble([member], samples_per_stochastic_member=3)
    proposals = ensemble.propose(observation, seed=0)
    assert proposals.shape == (3, 3, 4, 2)
    assert not torch.equal(proposals[:, 0], proposals[:, 1])
    torch.testing.assert_close(proposals, ensemble.propose(observation, seed=0), rtol=0, atol=0)
    after = member.policy._queues
    assert before.keys() == after.keys()
    for key, items in before.items():
        assert len(after[key]) == len(items) and all(
            a is b for a, b in zip(after[key], items, strict=True)
        ), key
