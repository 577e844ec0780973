"""Plugins: files parsed into manifests without running them, the registry, the engine that runs each Python
plugin in its own Jupyter kernel, and the bootstrap and api that run inside that kernel."""
