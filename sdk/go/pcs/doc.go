// Package pcs builds, signs, checks and submits Proof-of-Computation Summaries (PCS)
// for the flk pipeline. It uses the standard library only.
//
// # The signing rule (SPEC §2)
//
// A signature covers exactly 8 fields: pcs_id, merkle_root, epoch, shard_id, D_hat,
// coh_star, r, budget. They are serialised as compact JSON with keys sorted by code
// point (so D_hat comes first), and:
//
//   - each of the 4 numbers is rounded to 9 decimal places, half away from zero, applied
//     to its shortest round-trip decimal text (Python's
//     float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP))), then printed as
//     Python's repr prints it: 1.0, 0.5, 5e-05, 1e-07, -0.0, 1e+16 (exponent form below
//     1e-4 and from 1e16 on, at least two exponent digits);
//   - epoch is a plain integer, 0 ≤ epoch < 2^53;
//   - strings are ASCII-only: \" \\ \n \r \t \b \f, every other character outside
//     0x20–0x7E as \uXXXX in lowercase hex (UTF-16 surrogate pairs above U+FFFF; 0x7F
//     too); <, > and & stay literal.
//
// The signature is over digest = SHA-256(payload): HMAC-SHA256 keyed with the UTF-8
// bytes of the tenant's secret (44 base64 characters), or pure Ed25519 (88 characters);
// standard base64 with padding.
//
// # A worked example
//
// The reference vector "rounding-half-up" has D_hat 1.2345678905, coh_star 0.7000000005,
// r 0.5, budget 1.5e-09, epoch 7, shard_id "shard-7", merkle_root "aa…a" (64 a's). The
// rounding works on the decimal text, never on the binary value: 1.2345678905 → 1.234567891,
// 1.5e-09 → 2e-09 (printed in exponent form), 0.5 stays 0.5. The payload is
//
//	{"D_hat":1.234567891,"budget":2e-09,"coh_star":0.700000001,"epoch":7,"merkle_root":"aaaa…aaaa","pcs_id":"5e53…487e","r":0.5,"shard_id":"shard-7"}
//
// its SHA-256 is 58de23204f2a48e2…, and with the HMAC secret "key-2-secret" the signature
// is TXTWX+KQLwRsFNea6e/+kOkoClA9KwdteNImJ1lZhjo= (ExampleSign). Reproduce it in a shell:
//
//	printf '%s' "$payload" | openssl dgst -sha256 -binary | openssl dgst -sha256 -binary -hmac key-2-secret | base64
//
// # Verification
//
// Check runs the pipeline's semantic checks (SPEC §3 steps 4–7: pcs_id, sanity, the
// Theil–Sen D̂, coh★ bound, regime, budget) locally, with the same reason codes, so an
// agent can see an escalation coming before it submits; Evaluate adds parsing (400) and
// the key-set signature check (401). Both are tested against the shared vector file
// sdk/vectors/pcs-vectors.json.
//
// # Submitting
//
// Client submits to one or more regional gateways (SPEC §4) with retries (exponential
// backoff with jitter, Retry-After honoured, no retry on 400, 401, 404 or 413),
// health-based failover (GET /healthz), one X-Request-Id per logical submission kept
// across retries, pending-outcome polling and outcome reads with the tenant's read token.
// A 202 — escalated or pending — is an *Outcome, not an error; failures are typed
// (*MalformedError, *UnauthorizedError, *RateLimitedError, …) for errors.As.
package pcs
