"""The command line: ``scopeflow serve`` and ``scopeflow run`` (single runs and batches, their inputs,
results and provenance)."""
