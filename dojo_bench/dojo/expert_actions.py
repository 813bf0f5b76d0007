"""A copy of a labelled dojo dataset whose ``action`` is the expert's label, for trainers that read ``action`` only.

DAgger and re-planning-expert episodes (``dojo-bench data kind=robot policy=expert learner=PATH`` or
``label_chunk=N``, see ``dagger.py``) keep two actions per frame: ``action``, what was executed (half of it the
learner's own, weaker, choices at ``learner_share=0.5``), and ``gt.expert_action``, the expert's label. dojo-bench's
policy stage trains on the label; lerobot's ``lerobot-train`` trains on ``action`` and so would imitate the
learner too. This writes a LeRobot dataset identical to the source except that ``action`` (frames, per-episode
stats, ``meta/stats.json``) holds the label. Videos are hard-linked (copied across file systems), the rest copied.

``--images`` stores the camera frames as PNG images inside the frame tables instead (LeRobot's ``image`` dtype),
decoded once from the videos: the same pixels, but a training step no longer seeks and decodes AV1 (about a
third of an ACT step of batch 16 on 2 CPU cores).

    python -m dojo_bench.dojo.expert_actions runs/act_data/train runs/act_data_expert [--images]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

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


PNG_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # how datasets' Image stores a frame


class _VideoFrames:
    """The frames of a dataset's videos by (episode, frame index), each video file decoded once when first asked."""

    def __init__(self, root: Path, info: dict, key: str) -> None:
        self.root, self.info, self.key, self.files = root, info, key, {}
        self.episodes = {}  # episode -> (chunk, file, its first frame in that file)
        for path in sorted((root / "meta" / "episodes").rglob("*.parquet")):
            rows = pq.read_table(path).to_pydict()
            for i, episode in enumerate(rows["episode_index"]):
                first = round(rows[f"videos/{key}/from_timestamp"][i] * info["fps"])
                self.episodes[episode] = (
                    rows[f"videos/{key}/chunk_index"][i],
                    rows[f"videos/{key}/file_index"][i],
                    first,
                )

    def frame(self, episode: int, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        chunk, file, first = self.episodes[episode]
        if (chunk, file) not in self.files:
            path = self.root / self.info["video_path"].format(
                video_key=self.key, chunk_index=chunk, file_index=file
            )
            with av.open(str(path)) as container:
                self.files[chunk, file] = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return self.files[chunk, file][first + index]


def _png_column(frames: _VideoFrames, table: pa.Table) -> pa.Array:
    """One PNG per row of a frame table (its episode_index and frame_index), as datasets' Image struct."""
    cells = []
    for episode, index in zip(
        table.column("episode_index").to_pylist(), table.column("frame_index").to_pylist(), strict=True
    ):
        buffer = io.BytesIO()
        Image.fromarray(frames.frame(episode, index)).save(buffer, format="PNG")
        cells.append({"bytes": buffer.getvalue(), "path": None})
    return pa.array(cells, type=PNG_STRUCT)


def write_expert_actions(src: str | Path, out: str | Path, images: bool = False) -> Path:
    """Write ``out``: the LeRobot dataset at ``src`` with ``action`` := ``gt.expert_action`` (and, with
    ``images``, its video frames stored as PNG images in the frame tables). Returns ``out``."""
    src, out = Path(src), Path(out)
    info_path = src / "meta" / "info.json"
    if not info_path.is_file():
        raise DojoError(
            f"{src} is not a LeRobot dataset (no meta/info.json); pass the folder that holds meta/"
        )
    info = json.loads(info_path.read_text())
    features = info["features"]
    if LABEL not in features or ACTION not in features:
        raise DojoError(
            f"{src} has no {LABEL} labels: record it with learner=PATH or label_chunk=N (dojo-bench data kind=robot)"
        )
    if out.exists():
        raise DojoError(f"{out} already exists; pick a new folder or remove it")
    video_keys = [key for key, feature in features.items() if feature["dtype"] == "video"] if images else []
    videos = {key: _VideoFrames(src, info, key) for key in video_keys}
    # Metadata is copied (then rewritten where it changes); the frame tables, the per-episode tables and the
    # stats are written below; the videos, unless they become images, are hard-linked: nothing of src is shared
    # that this function writes to.
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.parquet", "stats.json", "videos"))
    if not video_keys and (src / "videos").is_dir():
        shutil.copytree(src / "videos", out / "videos", copy_function=_link_or_copy)
    for path in sorted(src.rglob("*.parquet")):
        table = pq.read_table(path)
        target = out / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if ACTION in table.column_names:  # data/: frames
            table = _swap_column(table, ACTION, LABEL)
            for key, frames in videos.items():
                table = table.append_column(key, _png_column(frames, table))
        stat_columns = [c for c in table.column_names if c.startswith(f"stats/{ACTION}/")]
        for column in stat_columns:  # meta/episodes/: per-episode stats
            table = _swap_column(table, column, column.replace(f"stats/{ACTION}/", f"stats/{LABEL}/"))
        pq.write_table(table, target)
    stats = json.loads((src / "meta" / "stats.json").read_text())
    stats[ACTION] = stats[LABEL]
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    if video_keys:
        for key in video_keys:
            features[key] = {**features[key], "dtype": "image"}
            features[key].pop("info", None)  # the video's codec and fps
        (out / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dojo_bench.dojo.expert_actions",
        description="Copy a labelled dojo dataset with action := gt.expert_action (for lerobot-train).",
    )
    parser.add_argument("src", help="a LeRobot dataset folder with gt.expert_action (e.g. runs/data/train)")
    parser.add_argument("out", help="the new dataset folder (must not exist)")
    parser.add_argument(
        "--images",
        action="store_true",
        help="store the video frames as PNG images (faster training on a CPU)",
    )
    args = parser.parse_args(argv)
    try:
        out = write_expert_actions(args.src, args.out, images=args.images)
    except DojoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}: action is now the expert's label ({LABEL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
