"""flk-pcs: the one implementation of the PCS contracts (SPEC §1–§3) and the Python SDK."""

from .build import Ed25519Signer, HmacSigner, Signer, build_pcs, encode_body, sign_pcs
from .canonical import compute_pcs_id, payload_of, round9, signing_payload
from .dhat import recompute_d_hat
from .engine import Decision, decide, evaluate, expected_budget, expected_regime, verify_signature
from .errors import FlkPcsError, KeySetError, MalformedError, PolicyError
from .keyset import Key, KeySet, SignatureCheck, keyset_from_mapping, keyset_from_text, load_keyset
from .outcome import Outcome
from .parsing import parse, record_from_object
from .policy import (
    Policy,
    TenantPolicy,
    VerificationParams,
    default_policy,
    load_policy,
    policy_from_mapping,
    policy_from_text,
)
from .record import FaultTolerance, PCSRecord

__version__ = "0.1.0"

__all__ = [
    "Decision",
    "Ed25519Signer",
    "FaultTolerance",
    "FlkPcsError",
    "HmacSigner",
    "Key",
    "KeySet",
    "KeySetError",
    "MalformedError",
    "Outcome",
    "PCSRecord",
    "Policy",
    "PolicyError",
    "SignatureCheck",
    "Signer",
    "TenantPolicy",
    "VerificationParams",
    "build_pcs",
    "compute_pcs_id",
    "decide",
    "default_policy",
    "encode_body",
    "evaluate",
    "expected_budget",
    "expected_regime",
    "keyset_from_mapping",
    "keyset_from_text",
    "load_keyset",
    "load_policy",
    "parse",
    "payload_of",
    "policy_from_mapping",
    "policy_from_text",
    "recompute_d_hat",
    "record_from_object",
    "round9",
    "sign_pcs",
    "signing_payload",
    "verify_signature",
]
