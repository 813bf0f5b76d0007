"""The evaluation engine: rollouts in the real and the imagined dojo, result storage, media, start states."""
