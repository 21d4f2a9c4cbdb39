"""Verdicts: a case's checks applied to an output record. Imports ``spec`` and ``generation``."""
