"""load_policy: exact round trips (ours and a stock lerobot policy), lerobot's own loaders, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class, make_pre_post_processors

from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from policies.loading import check_action_dim, checkpoint_hash, load_policy, save_pretrained_model
from policies.pixel_policy import PixelPolicy


def _assert_same_parameters(loaded: torch.nn.Module, original: torch.nn.Module) -> None:
    loaded_state, original_state = loaded.state_dict(), original.state_dict()
    assert loaded_state.keys() == original_state.keys()
    for key, value in original_state.items():
        assert torch.equal(loaded_state[key], value), key


def test_exact_round_trip(make_checkpoint, observation):
    folder, original = make_checkpoint("policy_a")
    loaded = load_policy(folder, device="cpu")

    assert isinstance(loaded.policy, PixelPolicy)
    assert not loaded.policy.training
    assert loaded.name == "policy_a"
    assert loaded.action_dim == 2 and loaded.chunk_size == 4 and not loaded.stochastic
    _assert_same_parameters(loaded.policy, original)

    # Same actions from the same batch, bit for bit, through the saved processors as well.
    original.eval()
    original.reset()
    loaded.reset()
    batch = loaded.preprocessor(dict(observation))
    for _ in range(5):  # crosses a chunk boundary (n_action_steps = 4)
        torch.testing.assert_close(
            loaded.policy.select_action(batch), original.select_action(batch), rtol=0, atol=0
        )
    # Env units: the postprocessor maps [-1, 1] back to the 0-512 arena.
    chunk = loaded.predict_chunk(observation)
    assert chunk.shape == (3, 4, 2)
    expected = (original.predict_action_chunk(batch)[:, :4] + 1) / 2 * 512
    torch.testing.assert_close(chunk, expected, rtol=0, atol=1e-4)


def test_lerobot_loads_our_checkpoint_with_its_own_api(make_checkpoint, observation):
    folder, original = make_checkpoint()
    config = PreTrainedConfig.from_pretrained(folder)
    assert config.type == "dojo_pixel"
    policy = get_policy_class(config.type).from_pretrained(folder, config=config)
    preprocessor, postprocessor = make_pre_post_processors(config, pretrained_path=str(folder))
    _assert_same_parameters(policy, original)
    batch = preprocessor(dict(observation))
    torch.testing.assert_close(
        postprocessor(policy.predict_action_chunk(batch)),
        load_policy(folder).postprocessor(original.eval().predict_action_chunk(batch)),
        rtol=0,
        atol=0,
    )


def test_stock_lerobot_checkpoint_round_trip(tmp_path, observation):
    """A lerobot ACT policy saved the way lerobot's trainer saves it, read back by load_policy."""
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    config = ACTConfig(
        device="cpu",
        pretrained_backbone_weights=None,  # nothing downloads
        dim_model=16,
        n_heads=2,
        dim_feedforward=32,
        n_encoder_layers=1,
        n_decoder_layers=1,
        use_vae=False,
        chunk_size=4,
        n_action_steps=4,
        input_features={
            OBS_IMAGE: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 96, 96)),
            OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(2,)),
        },
        output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(2,))},
    )
    mean_std = {"mean": torch.full((2,), 256.0), "std": torch.full((2,), 100.0)}
    stats = {
        OBS_STATE: dict(mean_std),
        ACTION: dict(mean_std),
        OBS_IMAGE: {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)},
    }
    torch.manual_seed(0)
    original = ACTPolicy(config).eval()
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    folder = save_pretrained_model(
        original, preprocessor, postprocessor, tmp_path / "act" / "pretrained_model"
    )

    loaded = load_policy(folder)
    assert loaded.policy_type == "act" and loaded.name == "act"
    _assert_same_parameters(loaded.policy, original)
    batch = preprocessor(dict(observation))
    expected = postprocessor(original.predict_action_chunk(batch))
    torch.testing.assert_close(loaded.predict_chunk(observation), expected, rtol=0, atol=0)


def test_checkpoint_hash_is_sha256_of_the_weights(make_checkpoint):
    folder, _ = make_checkpoint()
    expected = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert checkpoint_hash(folder) == expected == checkpoint_hash(folder / "model.safetensors")
    assert load_policy(folder).checkpoint_hash == expected
    other, _ = make_checkpoint("other", seed=1)
    assert checkpoint_hash(other) != expected


def test_check_action_dim(make_checkpoint):
    loaded = load_policy(make_checkpoint()[0])
    check_action_dim(loaded, 2)
    check_action_dim(loaded.policy, 2)
    with pytest.raises(DojoError, match=r"^policy policy outputs 2-d actions but 7-d actions are expected$"):
        check_action_dim(loaded, 7)


def _edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _break(case, folder):
    if case == "missing folder":
        shutil.rmtree(folder)
    elif case == "missing config":
        (folder / "config.json").unlink()
    elif case == "corrupt config":
        (folder / "config.json").write_text('{"type": "dojo_pixel", "chunk_')
    elif case == "config without type":
        (folder / "config.json").write_text("[1, 2]")
    elif case == "unknown type":
        _edit_config(folder, type="no_such_policy")
    elif case == "bad config value":
        _edit_config(folder, loss="huber")
    elif case == "missing weights":
        (folder / "model.safetensors").unlink()
    elif case == "corrupt weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "garbage weights":
        (folder / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    elif case == "weights of another shape":
        _edit_config(folder, hidden_dim=32)
    elif case == "missing processor":
        (folder / "policy_postprocessor.json").unlink()
    elif case == "corrupt processor":
        (folder / "policy_preprocessor.json").write_text("{")


BAD_INPUT = {
    "missing folder": r"no such folder$",
    "missing config": r"config\.json is missing$",
    "corrupt config": r"config\.json is not valid JSON",
    "config without type": r'config\.json has no policy "type"$',
    "unknown type": r"policy type 'no_such_policy' is not known to lerobot \(known: .*dojo_pixel",
    "bad config value": r"config\.json is not a valid 'dojo_pixel' config \(.*loss",
    "missing weights": r"model\.safetensors is missing$",
    "corrupt weights": r"model\.safetensors is corrupt",
    "garbage weights": r"model\.safetensors is corrupt",
    "weights of another shape": r"model\.safetensors does not fit its config",
    "missing processor": r"processor file policy_postprocessor\.json is missing$",
    "corrupt processor": r"cannot read its processor files",
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_checkpoints_give_one_clear_line(make_checkpoint, case):
    folder, _ = make_checkpoint()
    _break(case, folder)
    with pytest.raises(DojoError, match=BAD_INPUT[case]) as error:
        load_policy(folder)
    message = str(error.value)
    assert "\n" not in message and len(message) < 600
    assert message.startswith(f"policy checkpoint {folder}: ")


def test_a_gpu_trained_checkpoint_loads_on_the_cpu(make_checkpoint, observation):
    folder, original = make_checkpoint()
    _edit_config(folder, device="cuda")
    for name in ("policy_preprocessor.json", "policy_postprocessor.json"):
        pipeline = json.loads((folder / name).read_text())
        for step in pipeline["steps"]:
            if step.get("registry_name") == "device_processor":
                step["config"]["device"] = "cuda"
        (folder / name).write_text(json.dumps(pipeline))
    loaded = load_policy(folder, device="cpu")
    assert loaded.device.type == "cpu"
    chunk = loaded.predict_chunk(observation)
    assert chunk.device.type == "cpu"
    _assert_same_parameters(loaded.policy, original)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is missing")
def test_cuda_without_a_gpu_is_one_clear_line(make_checkpoint):
    with pytest.raises(DojoError, match=r"device 'cuda' requested but CUDA is not available$"):
        load_policy(make_checkpoint()[0], device="cuda")
