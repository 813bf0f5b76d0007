"""policies: LeRobot-format policies for dojo-bench.

- ``pixel_policy``: the project's own small pixel policy (lerobot type ``dojo_pixel``) and its processors.
- ``loading``: ``load_policy`` for lerobot ``pretrained_model`` folders, ``checkpoint_hash``, ``check_action_dim``.
- ``ensemble``: ``PolicyEnsemble``, action-chunk proposals from several checkpoints.

Import the submodules directly; this file stays light so importing the package does not pull in lerobot.
"""
