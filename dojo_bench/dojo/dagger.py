"""DAgger's data policy: a learned policy drives, the scripted expert says what it would have done.

Behaviour cloning from expert episodes only sees the states the expert visits; a cloned policy drifts off them
and has never seen how to recover. DAgger (Ross, Gordon and Bagnell, 2011) records the states the *learner*
visits and labels each with the expert's action there, then trains on the union with the expert data.

``LearnerWithExpert`` runs both at every step. The expert keeps its own plan as if it were acting (it re-plans
from the current state whenever a primitive ends or stalls, so its label is always a sensible next target from
where the learner put the agent). Control is decided per chunk: the learner executes its next ``n_action_steps``
actions with probability ``learner_share``, the expert otherwise (DAgger's beta = 1 - learner_share).

``dojo-bench data kind=robot policy=expert learner=PATH`` records such episodes: ``action`` is what was executed
(so the dataset is still a faithful record of the world's dynamics) and ``gt.expert_action`` is the label; the
policy stage trains on ``gt.expert_action`` wherever a dataset has it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dojo_bench.dojo.experts import PushExpert
from dojo_bench.dojo.worlds import PushWorld
from dojo_bench.keys import OBS_IMAGE, OBS_STATE

DAGGER_POLICY = "dagger"  # the data-policy name of these episodes in meta/dojo.json and gt.policy


class LearnerWithExpert:
    """Learner acts (per chunk, with probability ``learner_share``), the expert labels every step.

    learner: a ``policies.loading.LoadedPolicy`` (anything with ``reset()`` and ``predict_chunk(obs)`` returning
    (1, chunk, 2) env-unit actions); expert: the labelling ``PushExpert``.
    """

    def __init__(self, learner: Any, expert: PushExpert, learner_share: float = 1.0) -> None:
        if not 0 <= learner_share <= 1:
            raise ValueError(f"learner_share must be in [0, 1], got {learner_share}")
        self.learner, self.expert, self.learner_share = learner, expert, learner_share

    def reset(self, world: PushWorld, rng: np.random.Generator) -> None:
        self.expert.reset(world, rng)
        self.learner.reset()
        self.rng = np.random.default_rng(rng.integers(2**32))  # control draws apart from the expert's own
        self.queue: list[np.ndarray] = []  # the learner's remaining actions of the current chunk
        self.expert_left = 0  # steps the expert still has in control

    def _learner_chunk(self, observation: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The learner's next chunk from one observation: image (96, 96, 3) uint8, state (2,)."""
        import torch

        batch = {
            OBS_IMAGE: torch.from_numpy(np.ascontiguousarray(observation[OBS_IMAGE]))
            .permute(2, 0, 1)[None]
            .float()
            .div(255.0),
            OBS_STATE: torch.as_tensor(np.asarray(observation[OBS_STATE]), dtype=torch.float32)[None],
        }
        chunk = np.asarray(self.learner.predict_chunk(batch), dtype=np.float32)[0]  # (chunk, 2)
        if not np.isfinite(chunk).all():
            raise ValueError("the learner returned non-finite actions; DAgger cannot record them")
        return list(chunk)

    def act_labelled(
        self, world: PushWorld, observation: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(executed action, expert label), each (2,) float32 in arena pixels."""
        label = self.expert.act(world)
        if not self.queue and self.expert_left == 0:
            if self.rng.random() < self.learner_share:
                self.queue = self._learner_chunk(observation)
            else:
                self.expert_left = int(self.learner.chunk_size)
        if self.queue:
            return self.queue.pop(0).astype(np.float32), label
        self.expert_left -= 1
        return label, label
