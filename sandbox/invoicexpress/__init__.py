"""InvoiceXpress sandbox: `create_app(...)` returns a simulator of the documented API v2."""

from sandbox.invoicexpress.app import InvoiceXpressSandbox, create_app

__all__ = ["InvoiceXpressSandbox", "create_app"]
