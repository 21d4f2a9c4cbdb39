"""Data shipped with the installed package: ``fixtures/`` and the spec's test modules (``tests/spec``).

In the repository these live at the top level; the wheel maps them here (see pyproject.toml), and
``shisa_spec.spec.cases.FIXTURES`` finds whichever copy exists.
"""
