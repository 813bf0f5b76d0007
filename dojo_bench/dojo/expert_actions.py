"""A copy of a labelled dojo dataset whose ``action`` is the expert's label, for trainers that read ``action`` only.

DAgger and re-planning-expert episodes (``dojo-bench data kind=robot policy=expert learner=PATH`` or
``label_chunk=N``, see ``dagger.py``) keep two actions per frame: ``action``, what was executed (half of it the
learner's own, weaker, choices at ``learner_share=0.5``), and ``gt.expert_action``, the expert's label. dojo-bench's
policy stage trains on the label; lerobot's ``lerobot-train`` trains on ``action`` and so would imitate the
learner too. This writes a LeRobot dataset identical to the source except that ``action`` (frames, per-episode
stats, ``meta/stats.json``) holds the label. Videos are hard-linked (copied across file systems).

    python -m dojo_bench.dojo.expert_actions runs/act_data/train runs/act_data_expert
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq

from dojo_bench.core.errors import DojoError

LABEL = "gt.expert_action"
ACTION = "action"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _swap_column(table, name: str, source: str):
    """``table`` with column ``name`` replaced by column ``source`` (same type)."""
    return table.set_column(table.schema.get_field_index(name), name, table.column(source))


def write_expert_actions(src: str | Path, out: str | Path) -> Path:
    """Write ``out``: the LeRobot dataset at ``src`` with ``action`` := ``gt.expert_action``. Returns ``out``."""
    src, out = Path(src), Path(out)
    info_path = src / "meta" / "info.json"
    if not info_path.is_file():
        raise DojoError(
            f"{src} is not a LeRobot dataset (no meta/info.json); pass the folder that holds meta/"
        )
    features = json.loads(info_path.read_text())["features"]
    if LABEL not in features or ACTION not in features:
        raise DojoError(
            f"{src} has no {LABEL} labels: record it with learner=PATH or label_chunk=N (dojo-bench data kind=robot)"
        )
    if out.exists():
        raise DojoError(f"{out} already exists; pick a new folder or remove it")
    # Everything but the frame tables, the per-episode tables and the stats is carried over unchanged.
    shutil.copytree(
        src, out, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("*.parquet", "stats.json")
    )
    for path in sorted(src.rglob("*.parquet")):
        table = pq.read_table(path)
        target = out / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if ACTION in table.column_names:  # data/: frames
            table = _swap_column(table, ACTION, LABEL)
        stat_columns = [c for c in table.column_names if c.startswith(f"stats/{ACTION}/")]
        for column in stat_columns:  # meta/episodes/: per-episode stats
            table = _swap_column(table, column, column.replace(f"stats/{ACTION}/", f"stats/{LABEL}/"))
        pq.write_table(table, target)
    stats = json.loads((src / "meta" / "stats.json").read_text())
    stats[ACTION] = stats[LABEL]
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dojo_bench.dojo.expert_actions",
        description="Copy a labelled dojo dataset with action := gt.expert_action (for lerobot-train).",
    )
    parser.add_argument("src", help="a LeRobot dataset folder with gt.expert_action (e.g. runs/data/train)")
    parser.add_argument("out", help="the new dataset folder (must not exist)")
    args = parser.parse_args(argv)
    try:
        out = write_expert_actions(args.src, args.out)
    except DojoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}: action is now the expert's label ({LABEL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
