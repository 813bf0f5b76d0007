"""Planners: best-of-N and CEM search over policy-ensemble proposals, scored in imagination."""
