"""The routing core: domain, configuration, hooks, pipeline and engine."""
