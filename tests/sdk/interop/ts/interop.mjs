// Drives the TypeScript SDK (sdk/ts/dist, public exports only) against a running gateway for
// tests/sdk/test_interop.py. Reads one JSON config on stdin, builds and signs a fresh record,
// submits it, submits the same body again (a new request id), submits another fresh record with
// Prefer: respond-async and polls it (GET /v1/requests/{id}), submits a record signed with a
// wrong key and asks what became of it (a typed rejection), reads the stored outcome, and prints
// one JSON object of results on stdout.
// A failing step records its error and the program goes on; exit status 2/3 = unusable config.
import { readFileSync } from "node:fs";

import {
  build, signRecord, Client, HmacKey, Ed25519Key, NotFoundError, RejectedError, UnauthorizedError,
} from "../../../../sdk/ts/dist/index.js";

const cfg = JSON.parse(readFileSync(0, "utf8"));
const steps = cfg.steps ?? ["submit", "duplicate", "async", "wrong_key", "outcome"];
const waitMs = (cfg.wait_timeout_s ?? 120) * 1000;
const out = { sdk: "ts" };

function fatal(e) {
  out.fatal = String(e?.stack ?? e);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(3);
}

async function signer(alg, secret, seed) {
  if (alg === "hmac") return new HmacKey(secret);
  if (alg === "ed25519") return Ed25519Key.fromSeedB64(seed);
  throw new Error(`unknown alg ${alg}`);
}

async function record(shard, key) {
  const rec = await build({
    shard_id: shard, epoch: cfg.epoch, merkle_root: cfg.merkle_root,
    scales: [2, 4, 8, 16], N_j: { "2": 4, "4": 16, "8": 64, "16": 256 },
    coh_star: 0.5, r: 0.5,
  });
  return signRecord(rec, key);
}

function outcomeResult(first, o) {
  const r = {
    ok: true, status: o.status, http_status: o.httpStatus, accepted: o.accepted,
    escalated: o.escalated, dedup_hit: o.dedup_hit, conflict: o.conflict ?? false,
    request_id: o.request_id, pcs_id: o.pcs_id, tenant: o.tenant, region: o.region ?? null,
    endpoint: o.endpoint, reason: o.reason ?? null, regime: o.regime ?? null,
    policy_version: o.policy_version ?? null,
  };
  if (first !== null) {
    Object.assign(r, {
      first_status: first.status, first_http_status: first.httpStatus,
      first_request_id: first.request_id, first_endpoint: first.endpoint,
    });
  }
  return r;
}

function errorResult(e) {
  const r = { ok: false, error: String(e?.message ?? e), error_type: e?.constructor?.name ?? typeof e };
  if (e?.code !== undefined) r.sdk_code = e.code;
  if (e?.status !== undefined) {
    Object.assign(r, { http_status: e.status, code: e.apiCode, detail: e.detail, request_id: e.requestId });
  }
  return r;
}

async function submit(client, rec, signal, respondAsync = false) {
  let first;
  try {
    first = await client.submit(rec, { signal, respondAsync });
  } catch (e) {
    return errorResult(e);
  }
  try {
    return outcomeResult(first, await client.wait(first, { signal }));
  } catch (e) {
    return { ...errorResult(e), first_status: first.status, first_request_id: first.request_id };
  }
}

async function main() {
  let key, rec, client;
  try {
    key = await signer(cfg.alg, cfg.secret, cfg.seed);
    client = new Client({ endpoints: cfg.endpoints, tenant: cfg.tenant, readToken: cfg.read_token, timeoutMs: 15_000 });
    rec = await record(cfg.shard_id, key);
  } catch (e) {
    fatal(e);
  }
  out.pcs_id = rec.pcs_id;
  for (const step of steps) {
    const signal = AbortSignal.timeout(waitMs);
    if (step === "submit" || step === "duplicate") {
      out[step] = await submit(client, rec, signal); // each submit: a fresh request id
    } else if (step === "async") {
      // another fresh record with Prefer: respond-async: 202 pending, then wait (polling)
      let rec2;
      try {
        rec2 = await record(`${cfg.shard_id}-async`, key);
      } catch (e) {
        fatal(e);
      }
      out[step] = { ...(await submit(client, rec2, signal, true)), submitted_pcs_id: rec2.pcs_id };
    } else if (step === "wrong_key") {
      let bad;
      try {
        bad = await record(`${cfg.shard_id}-wrong-key`, await signer(cfg.alg, cfg.wrong_secret, cfg.wrong_seed));
      } catch (e) {
        fatal(e);
      }
      try {
        const o = await client.submit(bad, { signal });
        out[step] = { ok: false, error: "no error", status: o.status, http_status: o.httpStatus };
      } catch (e) {
        out[step] = { ...errorResult(e), typed_unauthorized: e instanceof UnauthorizedError };
        // What became of that request (GET /v1/requests/{id}): a typed rejection.
        if (e instanceof UnauthorizedError && e.requestId) {
          for (let tries = 1; ; tries++) {
            try {
              const o = await client.getRequest(e.requestId, { signal });
              out.rejected_request = { ok: true, status: o.status, tries };
              break;
            } catch (e2) {
              if (e2 instanceof NotFoundError && !signal.aborted) {
                await new Promise((r) => setTimeout(r, 250));
                continue;
              }
              const inner = e2 instanceof RejectedError ? e2.error : e2;
              out.rejected_request = {
                ...errorResult(inner), error_type: e2?.constructor?.name, sdk_code: e2?.code,
                typed_rejected: e2 instanceof RejectedError,
                typed_unauthorized: inner instanceof UnauthorizedError,
                polled_request_id: e.requestId, tries,
              };
              break;
            }
          }
        }
      }
    } else if (step === "outcome") {
      // GET /v1/pcs/{pcs_id}; the outcome store may lag the answer.
      let tries = 0;
      for (;;) {
        tries++;
        try {
          out[step] = outcomeResult(null, await client.getOutcome(rec.pcs_id, { signal }));
          break;
        } catch (e) {
          if (!(e instanceof NotFoundError) || signal.aborted) {
            out[step] = errorResult(e);
            break;
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      out[step].tries = tries;
    } else {
      fatal(new Error(`unknown step ${step}`));
    }
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch(fatal);
