"""Flow Payroll sandbox: the OAuth token endpoint and the Billing service, over seeded data."""

from __future__ import annotations

from typing import Any

from sandbox.flowpayroll.app import FlowPayrollSandbox


def create_app(seed: int = 42, latency: float = 0.0, **options: Any) -> FlowPayrollSandbox:
    """Build a Flow Payroll sandbox.

    Args:
        seed: seeds the data generator; the same seed gives the same organisation.
        latency: seconds added to every response.
        **options: `clients`, `invoices_per_client` (data size); `client_id`, `client_secret`
            (the valid credentials); `expires_in` (token lifetime in seconds);
            `requests_per_minute`, `token_requests_per_minute`, `budget_window` (429 budget,
            None = unlimited); `date_format`, `datetime_format` (the announced patterns);
            `metadata_at` (`content`, `top` or `both`); `expire_tokens_after` (expire every token
            issued so far when the N-th API call arrives); `repeat_token` (a faulty server that repeats its page token).
    """
    return FlowPayrollSandbox(seed=seed, latency=latency, **options)


__all__ = ["FlowPayrollSandbox", "create_app"]
