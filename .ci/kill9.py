"""kill -9 at three points of a run, then the same command again: does resuming change anything?

    python .ci/kill9.py [--work DIR] [--only evaluate,train,demo]

For each command (``dojo-bench evaluate size=tiny``, ``dojo-bench train size=tiny``, ``dojo-bench demo size=tiny
train=true world_model.max_steps=8``) it runs two uninterrupted references, then three runs each killed with SIGKILL (the whole process
group) when a file shows the run has reached a point (early, middle, late), each followed by the same command again
until it finishes. Every finished run is compared with the first reference:

- episodes: every ``episodes.parquet`` under out, keyed by (policy, seed, world): none lost, none recorded twice,
  and how many outcomes (success, steps, max progress) differ;
- weights: every ``*.safetensors`` under out (releases, policy checkpoints) by sha256;
- resume records: the train runs whose run.json says ``resume.bit_identical: false``.

The second reference tells run-to-run noise from what resuming changed. Prints a Markdown table (docs/train.md
keeps the last one) and writes ``WORK/kill9.json``. Runs one process at a time, on one thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

COMMANDS = {
    "evaluate": (["evaluate", "size=tiny", "device=cpu"], [
        ("early: recording the tiny data", "inputs/data/run.json"),
        ("middle: world model at step 4 of 8", "inputs/world_model/checkpoints/last.ckpt"),
        ("late: first episodes stored", "episodes/part-*.parquet"),
    ]),
    "train": (["train", "size=tiny", "device=cpu"], [
        ("early: recording the tiny data", "data/run.json"),
        ("middle: tokenizer at step 4 of 8", "tokenizer/checkpoints/last.ckpt"),
        ("late: world model at step 4 of 8", "checkpoints/last.ckpt"),
    ]),
    # the tiny chain's world model trains 8 steps (not 4) so that a kill can land between its two checkpoints
    "demo": (["demo", "size=tiny", "train=true", "world_model.max_steps=8", "device=cpu"], [
        ("early: recording the data", "data/run.json"),
        ("middle: world model at step 4 of 8", "world_model/checkpoints/last.ckpt"),
        ("late: first planning episodes stored", "plan/episodes/part-*.parquet"),
    ]),
}  # fmt: skip
KEY = ["policy", "seed", "world"]
OUTCOME = ["success", "steps", "max_progress"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # fmt: skip


def command(verb_args: list[str], out: Path) -> list[str]:
    return [sys.executable, "-m", "dojo_bench", *verb_args, f"out={out}"]


def run(args: list[str], log: Path, kill_when: str | None = None, timeout: float = 900) -> dict:
    """Run ``args``; with ``kill_when`` (a glob under out), SIGKILL its process group once a file matches."""
    out = Path(args[-1].split("=", 1)[1])
    started = time.perf_counter()
    with open(log, "a") as f:
        process = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        killed = False
        while process.poll() is None and time.perf_counter() - started < timeout:
            if kill_when and any(out.glob(kill_when)):
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.02)
        code = process.wait()
    return {"code": code, "killed": killed, "seconds": round(time.perf_counter() - started, 1)}


def episodes(out: Path) -> dict[str, pd.DataFrame]:
    return {str(p.relative_to(out)): pd.read_parquet(p) for p in sorted(out.rglob("episodes.parquet"))}


def weights(out: Path) -> dict[str, str]:
    """sha256 of every safetensors file's tensors (names and values; the file's bytes also hold a JSON header
    whose key order may vary)."""
    import torch
    from safetensors.torch import load_file

    hashes = {}
    for path in sorted(out.rglob("*.safetensors")):
        digest = hashlib.sha256()
        for name, tensor in sorted(load_file(path).items()):
            digest.update(name.encode())
            digest.update(
                tensor.to(torch.float32 if tensor.is_floating_point() else tensor.dtype).numpy().tobytes()
            )
        hashes[str(path.relative_to(out))] = digest.hexdigest()[:16]
    return hashes


def resumed_runs(out: Path) -> list[str]:
    found = []
    for record in sorted(out.rglob("run.json")):
        summary = json.loads(record.read_text()).get("summary") or {}
        resume = summary.get("resume") if isinstance(summary, dict) else None
        if isinstance(resume, dict) and resume.get("bit_identical") is False:
            where = str(record.parent.relative_to(out))
            found.append(f"{'the run' if where == '.' else where} from step {resume['from_step']}"
                         + (" (its input was)" if not resume["resumed"] else ""))  # fmt: skip
    return found


def compare(ref: Path, out: Path) -> dict:
    """What differs between the finished runs ``ref`` and ``out``."""
    result = {"episodes": 0, "lost": 0, "duplicated": 0, "outcomes_differ": 0}
    ref_episodes, got = episodes(ref), episodes(out)
    for name, expected in ref_episodes.items():
        frame = got.get(name, expected.iloc[0:0])
        result["episodes"] += len(frame)
        result["duplicated"] += int(frame.duplicated(KEY).sum())
        merged = expected.merge(frame.drop_duplicates(KEY), on=KEY, how="left", suffixes=("", "_got"),
                                indicator=True)  # fmt: skip
        result["lost"] += int((merged["_merge"] == "left_only").sum())
        both = merged[merged["_merge"] == "both"]
        differ = pd.Series(False, index=both.index)
        for column in OUTCOME:
            differ |= both[column].astype(float).ne(both[f"{column}_got"].astype(float))
        result["outcomes_differ"] += int(differ.sum())
    ref_weights, got_weights = weights(ref), weights(out)
    result["weights"] = len(ref_weights)
    result["weights_differ"] = sorted(k for k in ref_weights if got_weights.get(k) != ref_weights[k])
    result["resumed_not_identical"] = resumed_runs(out)
    return result


def scenario(name: str, work: Path) -> list[dict]:
    verb_args, points = COMMANDS[name]
    rows = []
    ref = work / name / "ref"
    for label, out in (("uninterrupted", ref), ("uninterrupted again", work / name / "ref2")):
        status = run(command(verb_args, out), work / name / f"{out.name}.log")
        row = {"command": name, "kill": label, "out": str(out), "first": status, "then": None}
        row["compare"] = compare(ref, out) if status["code"] == 0 else None
        rows.append(row)
    for i, (label, pattern) in enumerate(points):
        out = work / name / f"kill{i}"
        log = work / name / f"kill{i}.log"
        first = run(command(verb_args, out), log, kill_when=pattern)
        then = run(command(verb_args, out), log)
        row = {"command": name, "kill": label, "out": str(out), "first": first, "then": then}
        row["compare"] = compare(ref, out) if then["code"] == 0 else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| command | kill -9 | killed after | rerun | episodes (lost / twice) | outcomes differing | weights differing "
        "| resumed training (not bit-identical) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        first, then, c = row["first"], row["then"], row["compare"]
        killed = f"{first['seconds']} s" if first["killed"] else ("not reached" if row["then"] else "-")
        rerun = "-" if then is None else f"exit {then['code']}, {then['seconds']} s"
        if c is None:
            lines.append(f"| {row['command']} | {row['kill']} | {killed} | {rerun} | failed | | | |")
            continue
        weights_differ = f"{len(c['weights_differ'])} of {c['weights']}"
        if c["weights_differ"]:
            weights_differ += (
                f" ({', '.join(c['weights_differ'][:3])}{', ...' if len(c['weights_differ']) > 3 else ''})"
            )
        lines.append(
            f"| {row['command']} | {row['kill']} | {killed} | {rerun} | {c['episodes']} ({c['lost']} / "
            f"{c['duplicated']}) | {c['outcomes_differ']} | {weights_differ} | "
            f"{'; '.join(c['resumed_not_identical']) or 'none'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/dojo-bench-kill9")
    parser.add_argument("--only", default=",".join(COMMANDS))
    parser.add_argument("--recompare", action="store_true", help="compare the runs of WORK/kill9.json again")
    args = parser.parse_args()
    work = Path(args.work)
    if args.recompare:
        rows = json.loads((work / "kill9.json").read_text())
        for row in rows:
            done = row["then"] if row["then"] is not None else row["first"]
            out = Path(row["out"])
            row["compare"] = compare(out.parent / "ref", out) if done["code"] == 0 else None
        (work / "kill9.json").write_text(json.dumps(rows, indent=2))
        print(table(rows))
        return 0
    rows = []
    for name in args.only.split(","):
        if (work / name).exists():
            raise SystemExit(f"{work / name} exists: pass another --work")
        (work / name).mkdir(parents=True)
        rows += scenario(name, work)
    (work / "kill9.json").write_text(json.dumps(rows, indent=2))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
