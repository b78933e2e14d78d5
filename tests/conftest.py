"""Scenario files under tests/scenarios/ are collected by omniroute's own pytest plugin
(`omniroute.contrib.pytest_plugin`, registered through the `pytest11` entry point), exactly
as in any project that installs omniroute; nothing here collects them."""

pytest_plugins = ["pytester"]
