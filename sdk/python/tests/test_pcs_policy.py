from __future__ import annotations

import pytest
from flk_pcs import PolicyError, VerificationParams, default_policy, load_policy, policy_from_text
from flk_pcs.policy import DEFAULT_DEDUP_WINDOW_MS


def test_defaults_are_the_spec_defaults() -> None:
    p = default_policy()
    v = p.verification
    assert (v.tol_D, v.tol_coh, v.tol_budget) == (0.15, 0.05, 0.01)
    assert (v.alpha, v.beta, v.gamma, v.base, v.D0) == (0.30, 0.50, 0.20, 0.10, 2.2)
    assert (v.sticky_coh_min, v.sticky_D_max, v.non_sticky_D_min) == (0.70, 1.5, 2.6)
    assert p.dedup_window_ms == DEFAULT_DEDUP_WINDOW_MS == 14 * 86_400_000


def test_version_hashes_values_not_text() -> None:
    a = policy_from_text("verification:\n  tol_D: 0.15\n  alpha: 0.30\n# a comment\n")
    b = policy_from_text('{"verification": {"alpha": 0.3, "tol_D": 0.15}, "policy_format": 1}')
    c = policy_from_text("dedup_window: 14d\n")
    assert a.version == b.version == c.version == default_policy().version
    assert policy_from_text("verification: {tol_D: 0.2}").version != a.version
    assert len(a.version) == 16 and a.digest.startswith(a.version)


def test_tenant_overrides() -> None:
    p = policy_from_text(
        "dedup_window: 7d\n"
        "tenants:\n  acme:\n    verification: {tol_D: 0.3}\n    dedup_window: 36h\n"
        "  beta: {verification: {base: 0.0}}\n"
    )
    assert p.params("acme").tol_D == 0.3
    assert p.params("acme").alpha == 0.30
    assert p.for_tenant("acme").dedup_window_ms == 36 * 3_600_000
    assert p.for_tenant("beta").dedup_window_ms == 7 * 86_400_000
    assert p.params("nobody") == p.verification == VerificationParams()
    assert p.version != policy_from_text("dedup_window: 7d").version


def test_tiers_are_kept_and_hashed() -> None:
    p = policy_from_text("tiers: {hot_ttl: 1h, warm_ttl: 30d}")
    assert p.tiers == {"hot_ttl": 3_600_000, "warm_ttl": 30 * 86_400_000}
    assert p.version != default_policy().version


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("verification: {tol_D: 1.5}", "verification.tol_D", "[0.0, 1.0]"),
        ("verification: {tol_coh: 0.3}", "verification.tol_coh", "[0.0, 0.2]"),
        ("verification: {base: -0.1}", "verification.base", "[0.0, 1.0]"),
        ("verification: {D0: 3.5}", "verification.D0", "[0.0, 3.0]"),
        ("verification: {beta: -0.5}", "verification.beta", "≥ 0"),
        ("verification: {alpha: 0.5}", "verification.alpha", "≤ 1"),
        ("verification: {sticky_D_max: 2.7}", "verification.sticky_D_max", "non_sticky_D_min"),
        ("verification: {tol_D: .nan}", "verification.tol_D", "finite"),
        ("verification: {tol_D: true}", "verification.tol_D", "finite"),
        ("verification: {tol_d: 0.1}", "verification.tol_d", "did you mean 'tol_D'"),
        ("verifcation: {}", "verifcation", "did you mean 'verification'"),
        ("dedup_window: 0", "dedup_window", "> 0"),
        ("dedup_window: fortnight", "dedup_window", "duration"),
        ("tenants: {acme: {verification: {tol_coh: 1}}}", "tenants.acme.verification.tol_coh",
         "[0.0, 0.2]"),
        ("tenants: {acme: {ttl: 1}}", "tenants.acme.ttl", "unknown field"),
        ("policy_format: 2", "policy_format", "not supported"),
        ("verification: {tol_D: 0.1, tol_D: 0.2}", "policy", "duplicate key"),
        ("- a list", "policy", "mapping"),
        ("verification: [1, 2]", "verification", "mapping"),
        ("a: [unclosed", "policy", "not valid YAML"),
    ],
)
def test_invalid_policies_name_field_and_bound(text: str, field: str, words: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy_from_text(text)
    assert info.value.field == field
    assert words in str(info.value)


def test_load_policy_from_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "policy.yaml"  # type: ignore[operator]
    path.write_text("verification:\n  tol_budget: 0.02\n", encoding="utf-8")
    assert load_policy(path).verification.tol_budget == 0.02
