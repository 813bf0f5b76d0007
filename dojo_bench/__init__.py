"""dojo_bench."""
