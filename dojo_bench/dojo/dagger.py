"""DAgger's data policy: a learned policy drives, the scripted expert says what it would have done.

Behaviour cloning from expert episodes only sees the states the expert visits; a cloned policy drifts off them
and has never seen how to recover. DAgger (Ross, Gordon and Bagnell, 2011) records the states the *learner*
visits and labels each with the expert's action there, then trains on the union with the expert data.

The labels must be a function of what the learner can see. The expert's own actions are not: it commits to a
push primitive and follows it for many steps, so two visits to the same state can get different actions. Here the
expert therefore plans afresh at every chunk boundary: at step ``t = k * chunk`` it looks ahead (simulating its
next ``chunk`` actions from a fresh plan, then rewinding the physics), and those actions are the labels of steps
``t .. t + chunk - 1``. A chunk of labels that starts at a boundary is then a deterministic function of the state
there, which is what a chunking policy predicts (train on those frames with ``label_stride=chunk``).

Control is drawn per chunk: the learner executes its next chunk with probability ``learner_share``, the expert
its look-ahead otherwise (DAgger's beta = 1 - learner_share). With no learner at all (``learner=None`` and a
``chunk``) the re-planning expert alone acts: ``dojo-bench data kind=robot policy=expert label_chunk=8``.

``dojo-bench data kind=robot policy=expert learner=PATH`` records such episodes: ``action`` is what was executed
(so the dataset is still a faithful record of the world's dynamics) and ``gt.expert_action`` is the label; the
policy stage trains on ``gt.expert_action`` wherever a dataset has it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.experts import PushExpert
from dojo_bench.dojo.worlds import PushWorld

DAGGER_POLICY = "dagger"  # the data-policy name of these episodes in meta/dojo.json and gt.policy


class LearnerWithExpert:
    """Learner acts (per chunk, with probability ``learner_share``), the re-planning expert labels every step.

    learner: a ``policies.loading.LoadedPolicy`` (anything with ``chunk_size``, ``reset()`` and
    ``predict_chunk(obs)`` returning (1, chunk, 2) env-unit actions), or None for the re-planning expert alone
    (then ``chunk`` sets the look-ahead length and ``learner_share`` must be 0); expert: the labelling ``PushExpert``.
    """

    def __init__(
        self, learner: Any, expert: PushExpert, learner_share: float = 1.0, chunk: int | None = None
    ) -> None:
        if not 0 <= learner_share <= 1:
            raise ValueError(f"learner_share must be in [0, 1], got {learner_share}")
        if learner is None and (chunk is None or learner_share != 0):
            raise ValueError("without a learner, give the look-ahead chunk and learner_share=0")
        self.learner, self.expert, self.learner_share = learner, expert, learner_share
        self.chunk = int(learner.chunk_size if learner is not None else chunk)

    def reset(self, world: PushWorld, rng: np.random.Generator) -> None:
        self.expert.reset(world, rng)
        if self.learner is not None:
            self.learner.reset()
        self.rng = np.random.default_rng(rng.integers(2**32))  # control draws apart from the expert's own
        self.step = 0
        self.labels: list[np.ndarray] = []  # the expert's look-ahead for the current chunk
        self.executed: list[np.ndarray] | None = None  # the learner's chunk, or None when the expert acts

    def _look_ahead(self, world: PushWorld) -> list[np.ndarray]:
        """The expert's next ``chunk`` targets from a fresh plan; the physics is rewound afterwards."""
        saved = world.snapshot()
        self.expert.plan = None
        targets = []
        for _ in range(self.chunk):
            target = np.clip(self.expert.act(world), 0, 512).astype(np.float32)
            targets.append(target)
            world.act(target)
        world.restore(saved)
        self.expert.plan = None  # the next boundary plans afresh again
        return targets

    def _learner_chunk(self, observation: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The learner's next chunk from one observation: image (96, 96, 3) uint8, state (2,)."""
        import torch  # torch only in the data workers that run a learner

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
        k = self.step % self.chunk
        if k == 0:
            self.labels = self._look_ahead(world)
            learner_acts = self.rng.random() < self.learner_share
            self.executed = self._learner_chunk(observation) if learner_acts else None
        self.step += 1
        label = self.labels[k]
        action = label if self.executed is None else self.executed[k].astype(np.float32)
        return action, label
