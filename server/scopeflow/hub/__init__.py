"""The hub: a jupyter-server extension. ``app`` wires every part together; the router forwards imjoy-rpc
frames and the workspace manager is the service directory every client talks to."""
