"""The shipped reference: every file matches its manifest, every checkpoint loads through the users' loader and
acts in the dojo, the zoo spreads over the benchmark's range, and the default models load."""

import numpy as np
import torch

from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from dojo_bench.core.manifest import sha256_of_file
from dojo_bench.dojo.tasks import get_task
from dojo_bench.engine.rollout import RealWorlds, to_policy_observation
from dojo_bench.shipped import shipped_model, shipped_models
from dojo_bench.value.value_model import load_value_model
from dojo_bench.verbs.inputs import load_env
from policies.loading import load_policy
from policies.zoo import ZOO_ROOT, shipped_zoo


def test_every_shipped_file_matches_its_manifest_hash():
    zoo = shipped_zoo()
    for entry in zoo.manifest["checkpoints"]:
        folder = ZOO_ROOT / entry["name"]
        on_disk = {p.name for p in folder.iterdir() if p.is_file()}
        assert on_disk == set(entry["files"]), entry["name"]  # nothing unlisted, nothing missing
        for name, digest in entry["files"].items():
            assert sha256_of_file(folder / name) == digest
    for entry in shipped_models():
        assert shipped_model(entry["name"])  # verifies every file of the entry


def test_the_zoo_spreads_over_the_benchmark_range_within_its_budget():
    zoo = shipped_zoo()
    rates = sorted(zoo.real_success().values())
    runs = {entry["made"]["run"] for entry in zoo.manifest["checkpoints"]}
    assert len(rates) >= 10 and len(runs) >= 3
    assert 0.10 <= rates[0] and rates[-1] <= 0.90
    size = sum(p.stat().st_size for p in ZOO_ROOT.rglob("*") if p.is_file())
    assert size <= 25e6, size


def test_every_shipped_checkpoint_loads_through_the_users_loader_and_acts():
    with RealWorlds(get_task("pusht_bench")) as world:
        observation = to_policy_observation(world.reset([0, 1]))
    for path in shipped_zoo().paths():
        policy = load_policy(path, device="cpu")
        with torch.no_grad():
            chunk = np.asarray(policy.predict_chunk(observation))
        assert chunk.shape[0] == 2 and chunk.shape[2] == 2 and np.isfinite(chunk).all()
        assert (chunk >= -50).all() and (chunk <= 562).all()  # targets in (or near) the 512-unit arena


def test_the_default_models_load_and_imagine_a_step():
    env = load_env(shipped_model("world_model"), "cpu", {}, 0)
    value = load_value_model(shipped_model("value_model"))
    with RealWorlds(get_task("pusht_bench")) as world:
        start = world.reset([0])
    env.reset(start)
    obs, info = env.step(np.repeat(start[OBS_STATE][:, None], env.chunk_size, axis=1))
    assert obs[OBS_IMAGE].shape == (1, 96, 96, 3)
    progress, _ = value.score(info["frames"][0])
    assert ((progress >= 0) & (progress <= 1)).all()
