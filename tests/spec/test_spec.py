"""The executable spec: one test per (case, check) in the case file (fixtures/cases/).

Run against a model with ``pytest -m gpu``, or judge a recorded transcript with
``pytest -m gpu --replay PATH``. Known failures are strict xfails: an XPASS means the model
improved and the mark must go.
"""

import pytest

from shisa_spec.frontends.pytest_plugin import judge

pytestmark = pytest.mark.gpu


def test_spec(spec_item, spec_output, spec_property):
    judge(spec_item, spec_output, spec_property)
