"""Action-chunk proposals from an ensemble of loaded checkpoints, for planners (best-of-N and friends).

Deterministic members (a regression policy) give one proposal each: asking again would repeat it.
Stochastic members (diffusion-type policies, noisy variants) give ``samples_per_stochastic_member`` proposals,
each drawn under its own seed derived from ``(seed, member index, sample index)`` in a forked RNG, so proposals
are reproducible and the caller's global RNG is left untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from dojo_bench.core.errors import DojoError
from policies.loading import LoadedPolicy


def _sample_seed(seed: int, member: int, sample: int) -> int:
    return int(np.random.SeedSequence([seed, member, sample]).generate_state(1)[0])


class PolicyEnsemble:
    """N action-chunk proposals per observation from several checkpoints sharing action dim and chunk size."""

    def __init__(self, members: list[LoadedPolicy], samples_per_stochastic_member: int = 4):
        if not members:
            raise DojoError("a policy ensemble needs at least one member")
        if samples_per_stochastic_member < 1:
            raise DojoError(
                f"samples_per_stochastic_member must be >= 1, got {samples_per_stochastic_member}"
            )
        first = members[0]
        for member in members[1:]:
            if member.action_dim != first.action_dim:
                raise DojoError(
                    f"ensemble members disagree on action dimension: {first.name} has {first.action_dim}, "
                    f"{member.name} has {member.action_dim}"
                )
            if member.chunk_size != first.chunk_size:
                raise DojoError(
                    f"ensemble members disagree on chunk size: {first.name} has {first.chunk_size}, "
                    f"{member.name} has {member.chunk_size}"
                )
        self.members = list(members)
        self.samples_per_stochastic_member = samples_per_stochastic_member
        # proposal_members[i] is the index of the member that makes proposal i.
        self.proposal_members: list[int] = [
            index
            for index, member in enumerate(self.members)
            for _ in range(samples_per_stochastic_member if member.stochastic else 1)
        ]

    @property
    def action_dim(self) -> int:
        return self.members[0].action_dim

    @property
    def chunk_size(self) -> int:
        return self.members[0].chunk_size

    @property
    def num_proposals(self) -> int:
        return len(self.proposal_members)

    def remember(self, observation: dict[str, Any]) -> None:
        """Hand an observation of the episode to every member that keeps an observation history (``remember``)."""
        for member in self.members:
            if hasattr(member, "remember"):
                member.remember(observation)

    @property
    def keeps_history(self) -> bool:
        """Whether a member predicts from past observations (a lerobot Diffusion Policy: ``n_obs_steps`` > 1)."""
        return any(int(getattr(getattr(m, "config", None), "n_obs_steps", 1) or 1) > 1 for m in self.members)

    @torch.no_grad()
    def propose(self, observation: dict[str, Any], seed: int = 0) -> Tensor:
        """Batched env observation (B, ...) -> proposals (B, num_proposals, chunk_size, action_dim), env units."""
        proposals: list[Tensor] = []
        for index, member in enumerate(self.members):
            if not member.stochastic:
                proposals.append(member.predict_chunk(observation))
                continue
            devices = [member.device.index or 0] if member.device.type == "cuda" else []
            for sample in range(self.samples_per_stochastic_member):
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(_sample_seed(seed, index, sample))
                    proposals.append(member.predict_chunk(observation))
        return torch.stack(proposals, dim=1)  # (B, N, T, A)
