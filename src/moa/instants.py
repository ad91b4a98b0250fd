"""Points in time as people type them into a query string or a command line: ISO 8601
dates (``2026-11-01``, midnight UTC) and datetimes (``2026-11-01T12:00:00Z``; one without
an offset is UTC). The server's usage pages and ``moa usage`` read bounds the same way, so
a period means the same thing through either."""

from __future__ import annotations

from datetime import UTC, datetime

EXAMPLES = "e.g. 2026-11-01 or 2026-11-01T12:00:00Z"


def parse_instant(text: str) -> datetime:
    """The aware UTC datetime ``text`` names. ValueError, saying what is accepted, if it is
    not an ISO 8601 date or datetime."""
    try:
        parsed = datetime.fromisoformat(text.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # overflow: an offset past year 1 or 9999
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(
            f"{shown!r} is not an ISO 8601 date or date and time ({EXAMPLES})"
        ) from None


def check_period(since: datetime | None, until: datetime | None) -> None:
    """ValueError if ``until`` does not come after ``since``: an empty period is a typo."""
    if since is not None and until is not None and until <= since:
        raise ValueError(f"must come after since ({since.isoformat()}), got {until.isoformat()}")
