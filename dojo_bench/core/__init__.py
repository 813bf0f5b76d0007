"""The ground floor: keys, errors, run directories, progress, devices, atomic writes, manifests, pure metrics; imports nothing else of the project."""
