"""shisa-spec: an executable behaviour spec for Japanese/English chat models.

Modules: ``cases`` (the spec as data), ``checks`` (judgements), ``loader`` (models),
``prompting`` (chat templates), ``generation`` (seeded batched decoding), ``transcript``
(records and replay), ``plugin`` (pytest glue).
"""

__version__ = "0.1.0"
