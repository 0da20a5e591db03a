"""A provider package outside `sources/`: `tests.example_provider.example` is a complete, minimal
provider (docs/adding-a-provider.md), found through the `providers_packages` setting."""
