"""Errors raised while reading FER2013 sources: each names the file and the row or member."""

from dataclasses import dataclass

from resdropnet.errors import ResDropNetError


class DataError(ResDropNetError, ValueError):
    """A source could not be read; the message names the file and the row or path."""


@dataclass(frozen=True)
class BadRecord:
    """One record that could not be used, and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class BadRecordPolicy:
    """Raises on the first bad record, or with skip_bad collects them all."""

    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad
        self.skipped: list[BadRecord] = []

    def reject(self, where: str, reason: str) -> None:
        if not self.skip_bad:
            raise DataError(f"{where}: {reason} (use --skip-bad to skip such records)")
        self.skipped.append(BadRecord(where, reason))
