"""The verification policy: a versioned, validated document (SPEC §3).

Document (YAML or JSON); every member is optional and defaults to SPEC §3:

    policy_format: 1
    verification: {tol_D: 0.15, tol_coh: 0.05, tol_budget: 0.01, alpha: 0.30, beta: 0.50,
                   gamma: 0.20, base: 0.10, D0: 2.2, sticky_coh_min: 0.70, sticky_D_max: 1.5,
                   non_sticky_D_min: 2.6}
    dedup_window: 14d            # or an integer number of milliseconds
    tiers: {hot_ttl: 1h, ...}    # durations, kept for the tiers issue; hashed, not interpreted
    tenants:
      acme: {verification: {tol_D: 0.2}, dedup_window: 7d}

The version is a hash of a canonical serialisation of the parsed values (never of the file's
text), so comments, key order and `0.3` vs `0.30` do not change it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

import yaml

from ._doc import canonical_json, load_yaml, read_document, sha256_hex
from .errors import PolicyError

POLICY_FORMAT: Final = 1
DEFAULT_DEDUP_WINDOW_MS: Final = 14 * 24 * 3600 * 1000
_DURATION_RE: Final = re.compile(r"(\d+)(ms|s|m|h|d)", re.ASCII)
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True, slots=True)
class VerificationParams:
    """The numbers of SPEC §3 steps 4–6; defaults are the SPEC's default policy."""

    tol_D: float = 0.15
    tol_coh: float = 0.05
    tol_budget: float = 0.01
    alpha: float = 0.30
    beta: float = 0.50
    gamma: float = 0.20
    base: float = 0.10
    D0: float = 2.2
    sticky_coh_min: float = 0.70
    sticky_D_max: float = 1.5
    non_sticky_D_min: float = 2.6

    def validate(self, where: str = "verification") -> None:
        """Raise PolicyError naming the first field that breaks a SPEC §3 bound."""
        ranges = {
            "tol_D": (0.0, 1.0),
            "tol_coh": (0.0, 0.2),
            "tol_budget": (0.0, 1.0),
            "base": (0.0, 1.0),
            "D0": (0.0, 3.0),
            "sticky_coh_min": (0.0, 1.0),
            "sticky_D_max": (0.0, 3.5),
            "non_sticky_D_min": (0.0, 3.5),
        }
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise PolicyError(f"{where}.{name}", f"{v!r} is outside [{lo}, {hi}]")
        for name in ("alpha", "beta", "gamma"):
            v = getattr(self, name)
            if v < 0:
                raise PolicyError(f"{where}.{name}", f"{v!r} must be ≥ 0")
        total = math.fsum((self.alpha, self.beta, self.gamma))
        if total > 1.0:
            raise PolicyError(
                f"{where}.alpha", f"alpha + beta + gamma = {total!r} must be ≤ 1"
            )
        if not self.sticky_D_max < self.non_sticky_D_min:
            raise PolicyError(
                f"{where}.sticky_D_max",
                f"{self.sticky_D_max!r} must be < non_sticky_D_min {self.non_sticky_D_min!r}",
            )


_PARAM_NAMES: Final = tuple(f.name for f in fields(VerificationParams))


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    verification: VerificationParams
    dedup_window_ms: int


@dataclass(frozen=True)
class Policy:
    verification: VerificationParams
    dedup_window_ms: int
    tiers: Mapping[str, int]
    # Overrides as written (only the members given), resolved per tenant in `tenants`.
    overrides: Mapping[str, Mapping[str, Any]]
    tenants: Mapping[str, TenantPolicy]
    digest: str
    version: str

    def for_tenant(self, tenant: str) -> TenantPolicy:
        found = self.tenants.get(tenant)
        if found is not None:
            return found
        return TenantPolicy(self.verification, self.dedup_window_ms)

    def params(self, tenant: str) -> VerificationParams:
        return self.for_tenant(tenant).verification

    def canonical_bytes(self) -> bytes:
        return canonical_json(self._canonical())

    def _canonical(self) -> dict[str, Any]:
        return _canonical_doc(self.verification, self.dedup_window_ms, self.tiers, self.overrides)


def _canonical_doc(
    verification: VerificationParams,
    dedup_window_ms: int,
    tiers: Mapping[str, int],
    overrides: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    return {
        "policy_format": POLICY_FORMAT,
        "verification": asdict(verification),
        "dedup_window_ms": dedup_window_ms,
        "tiers": dict(tiers),
        "tenants": {t: dict(o) for t, o in overrides.items()},
    }


def _unknown(field: str, key: object, allowed: tuple[str, ...]) -> PolicyError:
    hint = difflib.get_close_matches(str(key), allowed, n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {list(allowed)}"
    return PolicyError(f"{field}.{key}" if field else str(key), "unknown field" + suggestion)


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(field, f"must be a mapping, got {type(value).__name__}")
    return value


def _number(value: Any, field: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise PolicyError(field, f"{value!r} is not a finite number")
    return float(value)


def _duration_ms(value: Any, field: str) -> int:
    if type(value) is int:
        ms = value
    elif type(value) is str and (m := _DURATION_RE.fullmatch(value.strip())) is not None:
        ms = int(m.group(1)) * _UNIT_MS[m.group(2)]
    else:
        raise PolicyError(
            field, f"{value!r} is not a duration (milliseconds, or e.g. '14d', '36h')"
        )
    if ms <= 0:
        raise PolicyError(field, f"{value!r} must be > 0")
    return ms


def _params(raw: Mapping[str, Any], base: VerificationParams, field: str) -> tuple[
    VerificationParams, dict[str, float]
]:
    given: dict[str, float] = {}
    for key, value in raw.items():
        if key not in _PARAM_NAMES:
            raise _unknown(field, key, _PARAM_NAMES)
        given[key] = _number(value, f"{field}.{key}")
    params = replace(base, **given)
    params.validate(field)
    return params, given


def policy_from_mapping(doc: Any) -> Policy:
    """Validate a parsed policy document; raises PolicyError naming the field and bound."""
    top = _mapping(doc, "policy")
    allowed = ("policy_format", "verification", "dedup_window", "tiers", "tenants")
    for key in top:
        if key not in allowed:
            raise _unknown("", key, allowed)
    fmt = top.get("policy_format", POLICY_FORMAT)
    if fmt != POLICY_FORMAT or type(fmt) is not int:
        raise PolicyError("policy_format", f"{fmt!r} is not supported; this library reads 1")
    verification, _ = _params(_mapping(top.get("verification"), "verification"),
                              VerificationParams(), "verification")
    window = _duration_ms(top.get("dedup_window", DEFAULT_DEDUP_WINDOW_MS), "dedup_window")
    raw_tiers = _mapping(top.get("tiers"), "tiers")
    tiers = {str(k): _duration_ms(v, f"tiers.{k}") for k, v in raw_tiers.items()}
    overrides: dict[str, dict[str, Any]] = {}
    tenants: dict[str, TenantPolicy] = {}
    for tenant, raw in _mapping(top.get("tenants"), "tenants").items():
        field = f"tenants.{tenant}"
        body = _mapping(raw, field)
        for key in body:
            if key not in ("verification", "dedup_window"):
                raise _unknown(field, key, ("verification", "dedup_window"))
        params, given = _params(_mapping(body.get("verification"), f"{field}.verification"),
                                verification, f"{field}.verification")
        t_window = window
        override: dict[str, Any] = {"verification": given}
        if "dedup_window" in body:
            t_window = _duration_ms(body["dedup_window"], f"{field}.dedup_window")
            override["dedup_window_ms"] = t_window
        overrides[str(tenant)] = override
        tenants[str(tenant)] = TenantPolicy(params, t_window)
    digest = sha256_hex(canonical_json(_canonical_doc(verification, window, tiers, overrides)))
    return Policy(verification, window, tiers, overrides, tenants, digest, digest[:16])


def policy_from_text(text: str) -> Policy:
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise PolicyError("policy", f"not valid YAML: {exc}") from None
    return policy_from_mapping(doc)


def load_policy(path: str | Path) -> Policy:
    try:
        doc = read_document(path)
    except yaml.YAMLError as exc:
        raise PolicyError("policy", f"{path} is not valid YAML: {exc}") from None
    return policy_from_mapping(doc)


def default_policy() -> Policy:
    return policy_from_mapping({})


def with_overrides(overrides: Mapping[str, Any] | None) -> Policy:
    """The default policy with `verification` overrides (the vector file's `policy` member)."""
    return policy_from_mapping({"verification": dict(overrides or {})})
