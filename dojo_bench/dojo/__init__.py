"""dojo_bench/dojo."""
