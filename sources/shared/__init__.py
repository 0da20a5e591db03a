"""The layer every provider shares: HTTP, retries, rate budgets, pagination, canonical tables."""
