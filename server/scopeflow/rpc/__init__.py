"""imjoy-rpc glue every party shares (hub, kernels, the command line, scripts): the websocket connection,
the lean RPC class and the Python client."""
