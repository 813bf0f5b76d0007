"""The dojo: the simulated robot lab and human world, their tasks and experts, and recording them as LeRobot
datasets."""
