"""The value model: frames -> task progress and success probability."""
