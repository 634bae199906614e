from __future__ import annotations

from typing import Final

# Stable codes of a structurally broken record (SPEC §1, always HTTP 400). Callers switch on
# `.code`; the detail is for people and never quotes the payload beyond the offending field.
MALFORMED_CODES: Final[frozenset[str]] = frozenset(
    {
        "too_large",
        "invalid_unicode",
        "malformed_json",
        "non_finite_number",
        "number_out_of_range",
        "duplicate_key",
        "too_deep",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "invalid_pcs_id",
        "empty_string",
        "unsupported_version",
        "epoch_out_of_range",
        "attempt_out_of_range",
        "seed_out_of_range",
        "invalid_sent_at",
        "empty_scales",
        "invalid_regime",
        "invalid_signature_encoding",
    }
)


class FlkPcsError(Exception):
    """Base of every error this package raises on purpose."""


class MalformedError(FlkPcsError):
    """A record that breaks a structural rule of SPEC §1 (HTTP 400)."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        assert code in MALFORMED_CODES, code
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field


class PolicyError(FlkPcsError):
    """An invalid policy document; names the field and the bound it breaks (SPEC §3)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"policy field {field!r}: {detail}")
        self.field = field
        self.detail = detail


class KeySetError(FlkPcsError):
    """An invalid key-set document; names the field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"key set field {field!r}: {detail}")
        self.field = field
        self.detail = detail
