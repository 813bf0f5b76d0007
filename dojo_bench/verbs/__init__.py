"""The verbs of ``dojo-bench``, one module each, beside the CLI that dispatches to them."""
