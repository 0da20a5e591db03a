"""Keep secrets out of every log line, exception and dlt trace.

Some providers put the key in the URL (InvoiceXpress's `?api_key=`), so a secret can surface
anywhere a URL is printed. Secrets are registered once, when a source is built, and every
message this project formats goes through `redact`. A logging filter does the same for
records emitted by libraries (httpx logs request URLs at INFO level).
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, quote_plus

_MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
# Query parameters that carry credentials, masked even when the secret was never registered.
_SECRET_PARAMS = re.compile(r"(?i)\b(api_key|apikey|access_token|token|client_secret|password|secret)=([^&\s#'\"]+)")


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it, in plain and URL-encoded forms."""
    if not value or len(value) < 4:
        return
    with _lock:
        _secrets.update({value, quote(value, safe=""), quote_plus(value)})


def redact(text: str) -> str:
    """Return `text` with every registered secret and credential-like query value masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={_MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the fully formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    """Redact records from every logger that may print a URL, and quiet httpx's request log."""
    redacting = RedactingFilter()
    for name in ("", "httpx", "httpcore", "dlt"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(redacting)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
