"""Serving the exported models: `client` (gRPC and REST clients of TF-Serving) and `server` (an
in-process stand-in for TF-Serving over the same model directory, for tests and local use)."""
