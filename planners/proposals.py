"""N action-chunk proposals per decision from a policy ensemble, with seeded noisy samples to vary N.

    sampler = ProposalSampler(members, num_proposals=8, noise_std=10.0)
    proposals = sampler.propose(policy_observation, seed=123)      # (B, 8, chunk_size, action_dim), env units

``PolicyEnsemble`` gives one chunk per deterministic member and several samples per stochastic member (and refuses
members that disagree on action dimension or chunk size). To make any N, each member contributes
``ceil(N / members)`` samples: a stochastic member its own samples; a deterministic member its clean chunk first,
then copies with Gaussian noise of ``noise_std`` (env units: arena pixels in the dojo) added to every action.
Proposals are ordered sample-major (member 0 sample 0, member 1 sample 0, ..., member 0 sample 1, ...) and cut to
N, so N = 1 is member 0's clean chunk, N = members is every member's own chunk (no noise), and a larger N adds
samples evenly. The noise comes from a numpy ``Generator`` seeded from (seed, member, sample): reproducible, and
the global RNGs are left alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dojo_bench.core.arrays import to_numpy
from dojo_bench.core.errors import DojoError
from policies.ensemble import PolicyEnsemble


class ProposalSampler:
    """``num_proposals`` chunks (B, N, chunk_size, action_dim) per observation from ``members`` (see module doc)."""

    def __init__(self, members: Sequence[Any], num_proposals: int, noise_std: float = 0.0) -> None:
        if not isinstance(num_proposals, int) or num_proposals < 1:
            raise DojoError(f"num_proposals must be a positive integer, got {num_proposals!r}")
        if not math.isfinite(noise_std) or noise_std < 0:
            raise DojoError(f"noise_std must be >= 0, got {noise_std}")
        self.num_proposals = num_proposals
        self.noise_std = float(noise_std)
        self.samples_per_member = -(-num_proposals // max(len(members), 1))
        # PolicyEnsemble refuses an empty list and members with other action dimensions or chunk sizes.
        self.ensemble = PolicyEnsemble(list(members), samples_per_stochastic_member=self.samples_per_member)
        order = [(m, s) for s in range(self.samples_per_member) for m in range(len(members))]
        self._order = order[:num_proposals]
        # proposal i comes from member proposal_members[i]
        self.proposal_members = [m for m, _ in self._order]

    @property
    def members(self) -> list[Any]:
        return self.ensemble.members

    @property
    def action_dim(self) -> int:
        return int(self.ensemble.action_dim)

    @property
    def chunk_size(self) -> int:
        return int(self.ensemble.chunk_size)

    def reset(self) -> None:
        for member in self.members:
            member.reset()

    def propose(self, observation: dict[str, Any], seed: int = 0) -> np.ndarray:
        """Policy observation (B, ...) -> proposals (B, N, chunk_size, action_dim) float32, env units."""
        raw = self.ensemble.propose(observation, seed=seed)  # (B, P, K, A): ensemble order, member-major
        raw = to_numpy(raw).astype(np.float32)
        first: dict[int, int] = {}  # member -> its first column in the ensemble's output
        for column, member in enumerate(self.ensemble.proposal_members):
            first.setdefault(member, column)
        chunks = []
        for member, sample in self._order:
            if self.members[member].stochastic:
                chunks.append(raw[:, first[member] + sample])
                continue
            chunk = raw[:, first[member]]
            if sample > 0:  # a noisy copy of a deterministic member's chunk
                rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, member, sample])
                chunk = chunk + self.noise_std * rng.standard_normal(chunk.shape)
            chunks.append(chunk)
        return np.stack(chunks, axis=1).astype(np.float32)  # (B, N, K, A)


__all__ = ["ProposalSampler"]
