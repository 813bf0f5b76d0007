"""reports: self-contained HTML reports of stored runs (report.py), run comparison for CI (compare.py), their
charts (plots.py), rollout strips (media.py) and the autoescaping jinja2 environment (html.py)."""
