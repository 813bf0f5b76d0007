"""The compile switch: auto compiles on CUDA only; bad values are one usage error; parameter names survive."""

import pytest
import torch
from torch import nn

from dojo_bench.core.errors import UsageError
from world_model.compile import maybe_compile, normalise_compile, should_compile


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [("auto", "cpu", False), ("auto", "cuda", True), ("auto", "gpu", True), (True, "cpu", True),
     ("true", "cpu", True), (False, "cuda", False), ("false", "gpu", False)],
)  # fmt: skip
def test_should_compile(setting, device, expected):
    assert should_compile(setting, device) is expected


def test_bad_setting_is_a_usage_error():
    with pytest.raises(UsageError, match="compile must be auto, true or false"):
        normalise_compile("sometimes")


def test_train_config_refuses_bad_compile(tmp_path):
    from dojo_bench.train.config import TrainConfig

    with pytest.raises(UsageError, match="compile"):
        TrainConfig(out=str(tmp_path), compile="maybe")


def test_maybe_compile_keeps_parameter_names():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    names = list(module.state_dict())
    assert maybe_compile(module, "auto", "cpu") is False
    assert maybe_compile(module, "true", "cpu") is True  # compiles lazily: nothing runs here
    assert list(module.state_dict()) == names  # checkpoints and releases read the same with and without it
    assert isinstance(module, nn.Sequential) and torch.is_tensor(module[0].weight)
