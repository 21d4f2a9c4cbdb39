"""Registers the shisa-spec pytest plugin; everything else lives in shisa_spec.plugin."""

pytest_plugins = ["shisa_spec.plugin", "pytester"]
