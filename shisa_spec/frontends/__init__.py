"""Front ends: the pytest plugin (options, parametrisation, fixtures, gate hooks, tokenizer spec) and the
``shisa-spec`` command. Nothing imports this layer; only it (and the spec test modules) import pytest."""
