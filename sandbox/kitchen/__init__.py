"""Kitchen (kitchen.co) sandbox: a Laravel-style workspace API with seeded clients and invoices."""

from __future__ import annotations

from typing import Any

from sandbox.kitchen.app import KitchenApp


def create_app(seed: int = 42, latency: float = 0.0, **options: Any) -> KitchenApp:
    """A Kitchen workspace simulator.

    Args:
        seed: the data generator's seed.
        latency: seconds added to every response.
        **options: `clients`, `invoices` (data size), `workspace`, `api_key`,
            `requests_per_minute` and `rate_window` (Laravel throttle), `honour_json_headers`;
            see `KitchenApp`.
    """
    return KitchenApp(seed, latency=latency, **options)


__all__ = ["KitchenApp", "create_app"]
