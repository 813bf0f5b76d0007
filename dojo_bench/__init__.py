"""dojo-bench: rank robot policies and plan inside a learned world model, with a ground-truth dojo to check every
number. Subpackages, lowest layer first: core, dojo, value, engine, train, shipped, verbs (beside cli.py)."""
