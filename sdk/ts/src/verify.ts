import { computePcsId, digest } from "./canonical.js";
import { MalformedRecordError, PcsValueError } from "./errors.js";
import { budgetFor, DEFAULT_POLICY, regimeFor, theilSenDHat, type Policy, type Regime } from "./policy.js";
import { parseRecord, recordFromObject, SCHEMA, signedFields, type PcsRecord } from "./record.js";
import { Ed25519PublicKey, HmacKey, type Alg, type Verifier } from "./sign.js";

/** One key of a tenant, usable for receive stamps in [valid_from_ms, valid_until_ms). */
export interface KeySpec {
  key_id: string;
  alg: Alg;
  secret?: string;
  public_key?: string;
  valid_from_ms?: number;
  valid_until_ms?: number | null;
}

/** The key-set document of the Python core: `{keyset_format: 1, tenants: {name: {keys: [...]}}}`. */
export interface KeySetDocument {
  keyset_format?: number;
  tenants: Record<string, { keys: KeySpec[] }>;
}

export type SignatureFailure = "unknown_tenant" | "missing_signature" | "no_valid_key" | "bad_signature";

interface LoadedKey {
  spec: KeySpec;
  verifier: Verifier;
}

/** Tenants' keys with validity windows (SPEC §2 step 6: rotation). */
export class KeySet {
  private constructor(private readonly tenants: Map<string, LoadedKey[]>) {}

  static async fromDocument(doc: KeySetDocument): Promise<KeySet> {
    if (doc.keyset_format !== undefined && doc.keyset_format !== 1) {
      throw new PcsValueError("keyset_format", String(doc.keyset_format), "this library reads 1");
    }
    const tenants = new Map<string, LoadedKey[]>();
    for (const [tenant, { keys }] of Object.entries(doc.tenants ?? {})) {
      const loaded: LoadedKey[] = [];
      for (const [i, k] of keys.entries()) {
        const where = `tenants.${tenant}.keys[${i}]`;
        if (k.alg === "hmac") {
          if (!k.secret) throw new PcsValueError(`${where}.secret`, '""', "an hmac key needs a secret");
          loaded.push({ spec: k, verifier: new HmacKey(k.secret) });
        } else if (k.alg === "ed25519") {
          loaded.push({ spec: k, verifier: await Ed25519PublicKey.fromB64(k.public_key ?? "") });
        } else {
          throw new PcsValueError(`${where}.alg`, String(k.alg), "not hmac or ed25519");
        }
      }
      tenants.set(tenant, loaded);
    }
    return new KeySet(tenants);
  }

  /** The key of `tenant` usable at `atMs` that verifies `sig`, or the 401 reason. Keys are tried in order. */
  async check(tenant: string, atMs: number, record: PcsRecord): Promise<{ keyId: string } | { reason: SignatureFailure }> {
    const keys = this.tenants.get(tenant);
    if (keys === undefined) return { reason: "unknown_tenant" };
    if (record.sig === undefined || record.sig === "") return { reason: "missing_signature" };
    const d = await digest(signedFields(record));
    let usable = false;
    for (const { spec, verifier } of keys) {
      const from = spec.valid_from_ms ?? 0;
      const until = spec.valid_until_ms ?? null;
      if (from <= atMs && (until === null || atMs < until)) {
        usable = true;
        if (await verifier.verifyDigest(d, record.sig)) return { keyId: spec.key_id };
      }
    }
    return { reason: usable ? "bad_signature" : "no_valid_key" };
  }
}

/** The result of verification without dedup (SPEC §3). */
export interface Verdict {
  http_status: 200 | 202 | 400 | 401;
  status: "accepted" | "escalated" | "rejected";
  accepted: boolean;
  escalated: boolean;
  reason: string | null;
  recomputed_D_hat: number | null;
  recomputed_budget: number | null;
  regime: Regime | null;
  key_id?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

function scalesProblem(r: PcsRecord): string | null {
  if (new Set(r.scales).size < 2) return "too_few_scales";
  if (r.scales.some((s) => !(s >= 1 && s <= 1024))) return "scale_out_of_range";
  for (const s of r.scales) {
    const n = Object.hasOwn(r.N_j, String(s)) ? r.N_j[String(s)] : undefined;
    if (n === undefined) return "missing_N_j";
    if (!(n > 0)) return "nonpositive_N_j";
  }
  return null;
}

/**
 * The local pre-check of SPEC §3 steps 4–7 on a record: what the pipeline decides for a first
 * write that passed the signature check, with the same reason codes. The first failure wins;
 * a step-4 failure is accepted=false/escalated=true, a regime or budget disagreement
 * accepted=true/escalated=true (both 202), otherwise 200. recomputed_D_hat is given whenever
 * the scales allow it; budget and regime always.
 */
export async function check(r: PcsRecord, policy: Policy = DEFAULT_POLICY): Promise<Verdict> {
  const problem = scalesProblem(r);
  const dre = problem === null ? theilSenDHat(r.scales, r.N_j) : null;
  const budget = budgetFor(r.D_hat, r.coh_star, r.r, policy);
  const regime = regimeFor(r.D_hat, r.coh_star, policy);
  const v = (accepted: boolean, reason: string | null): Verdict => ({
    http_status: reason === null ? 200 : 202,
    status: reason === null ? "accepted" : "escalated",
    accepted,
    escalated: reason !== null,
    reason,
    recomputed_D_hat: dre,
    recomputed_budget: budget,
    regime,
  });
  if (r.schema !== SCHEMA) return v(false, "schema_mismatch");
  if (r.pcs_id !== (await computePcsId(r.merkle_root, r.epoch, r.shard_id))) return v(false, "pcs_id_mismatch");
  if (problem !== null) return v(false, problem);
  if (!HEX64.test(r.merkle_root)) return v(false, "bad_merkle_root");
  if (!(r.r >= 0 && r.r <= 1)) return v(false, "r_out_of_range");
  if (!(r.budget >= 0 && r.budget <= 1)) return v(false, "budget_out_of_range");
  if (!(r.D_hat >= 0 && r.D_hat <= 3.5)) return v(false, "D_hat_out_of_range");
  if (dre === null || Math.abs(r.D_hat - dre) > policy.tol_D) return v(false, "D_hat_mismatch");
  if (!(r.coh_star >= 0 && r.coh_star <= 1 + policy.tol_coh)) return v(false, "coh_star_out_of_range");
  if (r.regime !== regime) return v(true, "regime_mismatch");
  if (Math.abs(r.budget - budget) > policy.tol_budget) return v(true, "budget_mismatch");
  return v(true, null);
}

function rejected(status: 400 | 401, reason: string): Verdict {
  return {
    http_status: status, status: "rejected", accepted: false, escalated: false, reason,
    recomputed_D_hat: null, recomputed_budget: null, regime: null,
  };
}

/**
 * SPEC §3 steps 1, 2 and 4–7 for one body (no dedup): 400 with the malformed code, 401 when no
 * key of `tenant` valid at `receivedAtMs` verifies the signature, else `check`. `body` is the
 * JSON text or an already parsed object.
 */
export async function evaluate(
  body: string | object,
  tenant: string,
  receivedAtMs: number,
  keys: KeySet,
  policy: Policy = DEFAULT_POLICY,
): Promise<Verdict> {
  let r: PcsRecord;
  try {
    r = typeof body === "string" ? parseRecord(body) : recordFromObject(body);
  } catch (e) {
    if (e instanceof MalformedRecordError) return rejected(400, e.reason);
    throw e;
  }
  const sig = await keys.check(tenant, receivedAtMs, r);
  if ("reason" in sig) return rejected(401, sig.reason);
  return { ...(await check(r, policy)), key_id: sig.keyId };
}
