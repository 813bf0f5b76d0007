import json
from dataclasses import replace

import pytest
import torch

from world_model.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    load_world_model,
    save_world_model,
)
from world_model.dit import DiT
from world_model.tokenizer import VideoTokenizer


@pytest.fixture
def saved(tmp_path, tiny_tokenizer_config, tiny_dit_config):
    torch.manual_seed(0)
    tokenizer = VideoTokenizer(tiny_tokenizer_config)
    dit = DiT(tiny_dit_config)
    with torch.no_grad():  # non-zero adaLN weights, so a swapped tensor would show
        for p in dit.parameters():
            p.add_(torch.randn_like(p))
    directory = save_world_model(tmp_path / "ckpt", tokenizer=tokenizer, dit=dit, extra={"latent_scale": 0.5})
    return directory, tokenizer, dit


def test_round_trip_is_exact(saved):
    directory, tokenizer, dit = saved
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = load_world_model(directory, expected_action_dim=2, expected_state_dim=2, expected_image_size=96)
    assert loaded.extra == {"latent_scale": 0.5}
    assert loaded.dit.cfg == dit.cfg and loaded.tokenizer.cfg == tokenizer.cfg
    for original, restored in ((tokenizer, loaded.tokenizer), (dit, loaded.dit)):
        a, b = original.state_dict(), restored.state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    assert not loaded.dit.training


def test_components_can_be_saved_alone(tmp_path, tiny_tokenizer_config):
    save_world_model(tmp_path, tokenizer=VideoTokenizer(tiny_tokenizer_config))
    loaded = load_world_model(tmp_path)
    assert loaded.dit is None and loaded.tokenizer is not None
    with pytest.raises(CheckpointError, match=r"has no \['dit'\]"):
        load_world_model(tmp_path, require=("dit",))


def test_corrupt_weights_file(saved):
    directory, _, _ = saved
    weights = directory / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated download
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as info:
        load_world_model(directory)
    assert "\n" not in str(info.value)
    weights.write_bytes(b"\x80\x04garbage that is not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_world_model(directory)


def test_damaged_weights_that_still_parse(saved):
    directory, _, _ = saved
    weights = directory / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 differs"):
        load_world_model(directory)


def test_caller_expectations(saved):
    directory, _, _ = saved
    with pytest.raises(CheckpointError, match="takes 2-D actions but the caller provides 7-D actions"):
        load_world_model(directory, expected_action_dim=7)
    with pytest.raises(CheckpointError, match="built for 96x96 frames but the caller provides 64x64"):
        load_world_model(directory, expected_image_size=64)
    with pytest.raises(CheckpointError, match="predicts 2-D states"):
        load_world_model(directory, expected_state_dim=3)


def test_config_that_does_not_belong_to_the_weights(saved):
    directory, _, _ = saved
    config_path = directory / CONFIG_FILE
    payload = json.loads(config_path.read_text())
    # Same shapes, different model: only the config hash can catch this.
    payload["components"]["dit"]["attention"] = "frame_causal"
    config_path.write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="does not belong to"):
        load_world_model(directory)
    payload["components"]["dit"]["hidden_dim_typo"] = 3
    config_path.write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match=r"unknown DiTConfig field\(s\) \['hidden_dim_typo'\]"):
        load_world_model(directory)
    payload["components"]["dit"].pop("hidden_dim_typo")
    payload["components"]["dit"]["patch_size"] = 5
    config_path.write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="invalid DiTConfig: latent_size=12 is not divisible"):
        load_world_model(directory)
    config_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_world_model(directory)


def test_weights_with_wrong_shapes(tmp_path, tiny_dit_config):
    save_world_model(tmp_path / "a", dit=DiT(tiny_dit_config))
    save_world_model(tmp_path / "b", dit=DiT(replace(tiny_dit_config, hidden_dim=32)))
    # Pair a's config with b's weights, keeping the hash check satisfied: a stale export from other code.
    (tmp_path / "b" / CONFIG_FILE).write_text((tmp_path / "a" / CONFIG_FILE).read_text())
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tmp_path / "b" / WEIGHTS_FILE), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    with safe_open(str(tmp_path / "a" / WEIGHTS_FILE), "pt") as f:
        metadata = f.metadata()
    save_file(tensors, str(tmp_path / "b" / WEIGHTS_FILE), metadata=metadata)
    payload = json.loads((tmp_path / "b" / CONFIG_FILE).read_text())
    payload.pop("weights_sha256")  # the file hash is optional; without it the shape check must catch this
    (tmp_path / "b" / CONFIG_FILE).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="dit weights do not match config.json"):
        load_world_model(tmp_path / "b")


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="config.json: not found"):
        load_world_model(tmp_path / "nope")
