"""Feature keys shared by every package, mirroring lerobot's names.

Observations use lerobot's keys so that a policy cannot tell the real dojo from the imagined one. Per-frame
ground truth that only the dojo knows lives under ``gt.``; it describes the state shown in the same frame.
"""

OBS_IMAGE = "observation.image"
OBS_STATE = "observation.state"
ACTION = "action"

GT_OBJECT_POSE = "gt.object_pose"  # (3,) object body pose x, y, theta in the simulator's 512x512 frame
GT_COVERAGE = "gt.coverage"  # (1,) fraction of the goal region covered by the object
GT_PROGRESS = "gt.progress"  # (1,) coverage / success threshold, clipped to [0, 1]
GT_SUCCESS = "gt.success"  # (1,) coverage >= the task's success threshold
GT_POLICY = "gt.policy"  # (1,) index of the data policy into meta/dojo.json "policies"
GT_GROUP = "gt.group"  # (1,) counterfactual group (episodes sharing a start state); -1 elsewhere
GT_EXPERT_ACTION = (
    "gt.expert_action"  # (2,) DAgger data: the expert's action at this state (action = executed)
)
GT_SEED = "gt.seed"  # (1,) the episode's seed (start state and policy noise derive from it)

DOJO_META_FILE = "meta/dojo.json"  # dojo-bench's own description of a dataset, beside lerobot's meta
