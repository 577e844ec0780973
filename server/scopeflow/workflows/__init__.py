"""Workflows: the document and its checks, pins, the content-addressed cache, the runner, run records, the
library of saved documents and the gallery."""
