"""Registers the shisa-spec pytest plugin; everything else lives in shisa_spec.frontends.pytest_plugin"""

pytest_plugins = ["shisa_spec.frontends.pytest_plugin", "pytester"]
