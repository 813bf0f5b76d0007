"""The world model: video tokenizer, DiT dynamics, flow matching and sampler, their Lightning modules, and the
imagined envs that policies roll out in."""
