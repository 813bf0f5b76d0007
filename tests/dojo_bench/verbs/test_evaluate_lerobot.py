"""lerobot's own Diffusion Policy and ACT, as lerobot's trainer writes them, through `dojo-bench evaluate` and
`plan` at size=tiny (real dojo and imagination); checkpoints the dojo cannot feed are one line, nothing written."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class, make_pre_post_processors

from dojo_bench.cli import main
from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from policies.lerobot_train import PRESETS
from policies.loading import save_pretrained_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _models(tiny_evaluate_run) -> list[str]:
    code, out, _ = tiny_evaluate_run
    assert code == 0
    inputs = json.loads((out / "summary.json").read_text())["agreement"]["inputs"]
    return [f"world_model={inputs['world_model']}", f"value_model={inputs['value_model']}"]


def _stats() -> dict[str, dict[str, torch.Tensor]]:
    arena = {"min": torch.zeros(2), "max": torch.full((2,), 512.0), "mean": torch.full((2,), 256.0),
             "std": torch.full((2,), 100.0)}  # fmt: skip
    image = {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)}
    return {OBS_STATE: dict(arena), ACTION: dict(arena), OBS_IMAGE: image, "observation.images.top": image}


def save_lerobot_policy(folder, policy_type: str, inputs: dict[str, tuple[int, ...]], **fields):
    """A tiny lerobot policy of ``policy_type`` reading ``inputs``, made with lerobot's API and saved as its trainer
    saves it (policy, preprocessor, postprocessor)."""
    features = {key: PolicyFeature(type=FeatureType.STATE if key == OBS_STATE else FeatureType.VISUAL, shape=shape)
                for key, shape in inputs.items()}  # fmt: skip
    config = PreTrainedConfig.get_choice_class(policy_type)(
        **{**PRESETS[policy_type]["tiny"], **fields},
        input_features=features,
        output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(2,))},
        device="cpu",
    )
    policy = get_policy_class(policy_type)(config)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=_stats())
    return str(save_pretrained_model(policy, preprocessor, postprocessor, folder))


def test_lerobot_diffusion_and_act_evaluate_in_both_worlds(
    tiny_evaluate_run, tiny_lerobot_checkpoints, tmp_path
):
    policies = [str(tiny_lerobot_checkpoints[t]) for t in ("diffusion", "act")]
    out = tmp_path / "eval"
    args = ["evaluate", "size=tiny", "device=cpu", f"out={out}", f"policies=[{','.join(policies)}]",
            *_models(tiny_evaluate_run), "seeds=2", "max_steps=12", "bootstrap=20"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    labels = list(summary["agreement"]["inputs"]["policies"])
    assert len(labels) == 2 and {"diffusion", "act"} == {label.split("/")[0] for label in labels}
    frame = pd.read_parquet(out / "episodes.parquet")
    assert len(frame) == 2 * 2 * 2 and set(frame["world"]) == {"real", "imagined"}
    assert (frame["steps"] == 12).all() and not frame["flags"].astype(
        bool
    ).any()  # untrained: nobody succeeds


def test_lerobot_policies_plan_as_an_ensemble_with_ours(
    tiny_evaluate_run, tiny_lerobot_checkpoints, tmp_path
):
    _, run, _ = tiny_evaluate_run
    ours = json.loads((run / "summary.json").read_text())["agreement"]["inputs"]["policies"]
    policies = [
        str(tiny_lerobot_checkpoints["diffusion"]),
        str(tiny_lerobot_checkpoints["act"]),
        *ours.values(),
    ]
    out = tmp_path / "plan"
    args = ["plan", "size=tiny", "device=cpu", f"out={out}", f"policies=[{','.join(policies)}]",
            *_models(tiny_evaluate_run), "seeds=1", "max_steps=8", "num_proposals=4",
            "planners=[singles,best_of_n]"]  # fmt: skip
    assert main(args) == 0
    frame = pd.read_parquet(out / "episodes.parquet")
    assert len(frame) == len(policies) + 1 and (frame["steps"] == 8).all()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"observation.images.top": (3, 96, 96), OBS_STATE: (2,)}, "reads observation.images.top (3, 96, 96) but "
         "the dojo gives observation.image (3, 96, 96), observation.state (2,)"),
        ({OBS_IMAGE: (3, 84, 84), OBS_STATE: (2,)}, "reads observation.image of shape (3, 84, 84) but the dojo gives "
         "observation.image of shape (3, 96, 96)"),
    ],
)  # fmt: skip
def test_a_checkpoint_the_dojo_cannot_feed_is_one_line(tiny_evaluate_run, tmp_path, capsys, inputs, message):
    folder = save_lerobot_policy(tmp_path / "other_robot" / "pretrained_model", "diffusion", inputs)
    out = tmp_path / "o"
    args = ["evaluate", "device=cpu", f"policies=[{folder}]", *_models(tiny_evaluate_run), f"out={out}"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "other_robot" in err
    assert not out.exists()


def test_temporal_ensembling_against_a_4_action_world_model_is_one_line(tiny_evaluate_run, tmp_path, capsys):
    folder = save_lerobot_policy(tmp_path / "act_te" / "pretrained_model", "act", {OBS_IMAGE: (3, 96, 96),
                                 OBS_STATE: (2,)}, temporal_ensemble_coeff=0.01, n_action_steps=1)  # fmt: skip
    out = tmp_path / "o"
    args = ["evaluate", "device=cpu", f"policies=[{folder}]", *_models(tiny_evaluate_run), f"out={out}"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "chooses every action from the latest observation" in err
    assert "steps 4 actions at a time" in err and not out.exists()
