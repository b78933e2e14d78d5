"""What sits on top of the engine: the CLI, the scenario runner, the simulator."""
