"""shisa-spec: an executable behaviour spec for Japanese/English chat models.

The package reads as the pipeline, each layer importing only the ones below it:

- ``spec``: the spec as data (case files and their schema, check kinds, normalisation, extraction, sandbox)
- ``generation``: models, prompts, engines, the generation cache, the output store, transcripts
- ``verdicts``: judging an output (later: many samples) by a case's checks
- ``gate``: comparing two runs, the report, calibration of known-failure marks
- ``frontends``: the pytest plugin and the ``shisa-spec`` command

Importing the package imports nothing heavy: torch, transformers and pytest load only where used.
"""

__version__ = "0.1.0"
