"""Generation backends other than the in-process engine (engine.Engine)."""
