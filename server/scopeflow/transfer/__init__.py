"""Large arrays out of band: the codec imjoy-rpc calls, shared-memory segments, and the hub's blob store
with its HTTP doors."""
