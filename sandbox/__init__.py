"""Faithful local simulators of the providers' documented APIs, served over real HTTP on loopback.

No machine that runs the tests or the demo reaches the real providers, so each provider has a
sandbox here: `sandbox/<provider>/` with an app that implements the documented endpoints, auth,
pagination, error bodies, rate limits and quirks, over data from a seeded generator.

`sandbox.server` holds the shared plumbing (HTTP server, request log, rate budget, latency).
Run one by hand with `python -m sandbox <provider> --port 8801`.
"""
