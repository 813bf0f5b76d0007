"""Training, one module per stage (tokenizer, world_model, pixel_world_model, value_model, policy) beside the
config (config.py), the shared Lightning fit (fit.py), the run's inputs (inputs.py) and the entry (run.py)."""

import os

# lerobot's dataset tools draw tqdm bars of their own; ours are rich. tqdm reads this when it is imported, so it is
# set here, before any training module imports lerobot.
os.environ.setdefault("TQDM_DISABLE", "1")
