"""Faithful local simulators of the providers' documented APIs (docs/providers.md).

No machine that runs the tests or the demo reaches the real providers, so each provider has a
sandbox here: `sandbox/<provider>/` declares its routes, data generator and quirks on the shared
framework (`sandbox.framework`); `sandbox.server.SandboxServer` serves an app on loopback and
`app.transport()` in-process. Run one by hand with `python -m sandbox <provider> --port 8801`.
"""
