"""The `flk` error hierarchy. Each error owns its exit code; `flk.cli.main` prints it once."""

from __future__ import annotations


class FlkError(Exception):
    """A failure the user can act on. `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def format(self) -> str:
        text = f"Error: {self.message}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


class UsageError(FlkError):
    exit_code = 2


class PlatformError(FlkError):
    """The local platform could not be set up, started or stopped."""


class PortInUseError(PlatformError):
    def __init__(self, port: int, component: str, holder: str) -> None:
        super().__init__(
            f"Port {port} (needed by {component}) is already in use by {holder}",
            hint="stop that process, or move this platform with FLK_PORT_BASE=<n> "
            "(each region uses a block of 1000 ports from there)",
        )
        self.port = port
        self.holder = holder
