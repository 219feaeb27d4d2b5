"""Errors a user can cause. The CLI turns each into one paragraph and exit code 2."""

from __future__ import annotations


class FtuiError(Exception):
    """Base of every error caused by the user's input (files, flags, settings)."""

    exit_code = 2


class ConfigError(FtuiError):
    """A preset, a setting or a flag has a bad value."""


class DataError(FtuiError):
    """A data file cannot be used. Carries where: file, line (1-based) and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path, self.line, self.field = path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field '{field}')" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class RunNotFoundError(FtuiError):
    """No run matches the id, prefix or 'latest' given."""


class OfflineError(FtuiError):
    """Something on a hub was asked for and the network cannot reach it."""
