"""The built-in plugins, each one module, registered through the `omniroute` entry points."""
