import { computePcsId, encodeString, formatFloat, MAX_EPOCH, round9, type SignedFields } from "./canonical.js";
import { MalformedRecordError, PcsValueError } from "./errors.js";
import { budgetFor, DEFAULT_POLICY, regimeFor, theilSenDHat, type Policy, type Regime } from "./policy.js";
import { sign, type Signer } from "./sign.js";

export const SCHEMA = "fractal-lba-kakeya";
export const VERSION = "0.1";
/** The largest body the gateway takes (SPEC §1, §4: 413 above). */
export const MAX_BODY_BYTES = 1 << 20;

/** The optional fault-tolerance block. */
export interface FaultTolerance {
  outbox_seq?: number;
  degraded?: boolean;
  fallbacks?: string[];
  clock_skew_ms?: number;
}

/** A Proof-of-Computation Summary (SPEC §1). Only the SignedFields are covered by `sig`. */
export interface PcsRecord extends SignedFields {
  schema: string;
  version: string;
  attempt: number;
  sent_at: string;
  seed: number;
  scales: number[];
  N_j: Record<string, number>;
  v_star: number[];
  regime: Regime;
  sig?: string;
  ft?: FaultTolerance;
}

/** The 8 signed fields of a record. */
export function signedFields(r: SignedFields): SignedFields {
  return {
    pcs_id: r.pcs_id, merkle_root: r.merkle_root, epoch: r.epoch, shard_id: r.shard_id,
    D_hat: r.D_hat, coh_star: r.coh_star, r: r.r, budget: r.budget,
  };
}

function num(name: string, x: number): string {
  if (typeof x !== "number" || !Number.isFinite(x)) throw new PcsValueError(name, String(x), "must be a finite number");
  return formatFloat(x); // Python repr: -0.0 stays a float and the server parses the very double that was signed
}

function int(name: string, x: number): string {
  if (!Number.isSafeInteger(x)) throw new PcsValueError(name, String(x), "must be a safe integer");
  return String(x);
}

/**
 * The record as JSON text. Unlike JSON.stringify, floats print as Python's repr (so `-0.0`
 * does not become `0` and `1.0` stays a float), strings are ASCII-only, N_j keys sorted.
 */
export function serializeRecord(r: PcsRecord): string {
  const parts: string[] = [
    `"pcs_id":${encodeString(r.pcs_id, "pcs_id")}`,
    `"schema":${encodeString(r.schema, "schema")}`,
    `"version":${encodeString(r.version, "version")}`,
    `"shard_id":${encodeString(r.shard_id, "shard_id")}`,
    `"epoch":${int("epoch", r.epoch)}`,
    `"attempt":${int("attempt", r.attempt)}`,
    `"sent_at":${encodeString(r.sent_at, "sent_at")}`,
    `"seed":${int("seed", r.seed)}`,
    `"scales":[${r.scales.map((s) => int("scales", s)).join(",")}]`,
    `"N_j":{${Object.keys(r.N_j).sort().map((k) => `${encodeString(k, "N_j")}:${int("N_j", r.N_j[k]!)}`).join(",")}}`,
    `"coh_star":${num("coh_star", r.coh_star)}`,
    `"v_star":[${r.v_star.map((x) => num("v_star", x)).join(",")}]`,
    `"D_hat":${num("D_hat", r.D_hat)}`,
    `"r":${num("r", r.r)}`,
    `"regime":${encodeString(r.regime, "regime")}`,
    `"budget":${num("budget", r.budget)}`,
    `"merkle_root":${encodeString(r.merkle_root, "merkle_root")}`,
  ];
  if (r.sig !== undefined) parts.push(`"sig":${encodeString(r.sig, "sig")}`);
  if (r.ft !== undefined) {
    const ft: string[] = [];
    if (r.ft.outbox_seq !== undefined) ft.push(`"outbox_seq":${int("ft.outbox_seq", r.ft.outbox_seq)}`);
    if (r.ft.degraded !== undefined) ft.push(`"degraded":${r.ft.degraded ? "true" : "false"}`);
    if (r.ft.fallbacks !== undefined) ft.push(`"fallbacks":[${r.ft.fallbacks.map((s) => encodeString(s, "ft.fallbacks")).join(",")}]`);
    if (r.ft.clock_skew_ms !== undefined) ft.push(`"clock_skew_ms":${int("ft.clock_skew_ms", r.ft.clock_skew_ms)}`);
    parts.push(`"ft":{${ft.join(",")}}`);
  }
  return `{${parts.join(",")}}`;
}

const HEX64 = /^[0-9a-f]{64}$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
const REGIMES = new Set(["sticky", "mixed", "non_sticky"]);
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function validSentAt(s: string): boolean {
  const m = RFC3339.exec(s);
  if (m === null) return false;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  let ok = mo >= 1 && mo <= 12 && d >= 1 && d <= days && h <= 23 && mi <= 59 && sec <= 60;
  if (m[7] !== undefined) ok = ok && Number(m[7]) <= 23 && Number(m[8]) <= 59;
  return ok;
}

function canonicalB64(s: string): boolean {
  if (!B64.test(s)) return false;
  try {
    const bin = atob(s);
    let back = "";
    for (let i = 0; i < bin.length; i++) back += bin[i];
    return btoa(back) === s;
  } catch {
    return false;
  }
}

function outOfRange(v: unknown): boolean {
  if (typeof v === "number") return !(Math.abs(v) < 1e15);
  if (Array.isArray(v)) return v.some(outOfRange);
  if (v !== null && typeof v === "object") return Object.values(v).some(outOfRange);
  return false;
}

/**
 * Checks a parsed PCS object against SPEC §1's structural rules, in the Python core's order,
 * and returns it typed; a MalformedRecordError carries the same stable code the gateway's 400
 * carries. Token-level rules that JSON.parse hides (duplicate keys, `1.0` for an integer,
 * NaN tokens) are left to the server. A missing or empty `sig` is not malformed (it is a 401).
 */
export function recordFromObject(doc: unknown): PcsRecord {
  const fail = (code: string, field: string | null, detail: string): never => {
    throw new MalformedRecordError(code, field, detail);
  };
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return fail("not_an_object", null, "the body must be a JSON object");
  const o = doc as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (k !== "epoch" && k !== "seed" && outOfRange(v)) fail("number_out_of_range", k, "|number| must be below 1e15");
  }
  const get = (f: string): unknown => (Object.hasOwn(o, f) ? o[f] : fail("missing_field", f, "required field is missing"));
  const str = (f: string): string => {
    const v = get(f);
    return typeof v === "string" ? v : fail("wrong_type", f, "must be a string");
  };
  const integer = (f: string): number => {
    const v = get(f);
    return typeof v === "number" && Number.isInteger(v) ? v : fail("wrong_type", f, "must be an integer");
  };
  const number = (f: string): number => {
    const v = get(f);
    return typeof v === "number" ? v : fail("wrong_type", f, "must be a number");
  };
  const pcs_id = str("pcs_id");
  if (!HEX64.test(pcs_id)) fail("invalid_pcs_id", "pcs_id", "must be 64 lowercase hex characters");
  const schema = str("schema");
  const version = str("version");
  if (version !== VERSION) fail("unsupported_version", "version", `${JSON.stringify(version.slice(0, 20))} is not "${VERSION}"`);
  const shard_id = str("shard_id");
  if (shard_id === "") fail("empty_string", "shard_id", "must not be empty");
  const epoch = integer("epoch");
  if (!(epoch >= 0 && epoch < MAX_EPOCH)) fail("epoch_out_of_range", "epoch", `${epoch} is outside [0, 2^53)`);
  const attempt = integer("attempt");
  if (attempt < 1) fail("attempt_out_of_range", "attempt", `${attempt} is below 1`);
  const sent_at = str("sent_at");
  if (!validSentAt(sent_at)) fail("invalid_sent_at", "sent_at", "not an RFC 3339 date-time");
  const seed = integer("seed");
  if (!(Math.abs(seed) < MAX_EPOCH)) fail("seed_out_of_range", "seed", `|${seed}| is not below 2^53`);
  const scales = get("scales");
  if (!Array.isArray(scales)) return fail("wrong_type", "scales", "must be an array of integers");
  if (scales.length === 0) fail("empty_scales", "scales", "must not be empty");
  if (!scales.every((s) => typeof s === "number" && Number.isInteger(s))) fail("wrong_type", "scales", "must be an array of integers");
  const nj = get("N_j");
  if (nj === null || typeof nj !== "object" || Array.isArray(nj)) return fail("wrong_type", "N_j", "must be an object");
  if (!Object.values(nj).every((v) => typeof v === "number" && Number.isInteger(v))) fail("wrong_type", "N_j", "values must be integers");
  const coh_star = number("coh_star");
  const D_hat = number("D_hat");
  const r = number("r");
  const budget = number("budget");
  const v_star = get("v_star");
  if (!Array.isArray(v_star) || !v_star.every((x) => typeof x === "number")) return fail("wrong_type", "v_star", "must be an array of numbers");
  const regime = str("regime");
  if (!REGIMES.has(regime)) fail("invalid_regime", "regime", `${JSON.stringify(regime.slice(0, 20))} is not sticky, mixed or non_sticky`);
  const merkle_root = str("merkle_root");
  if (merkle_root === "") fail("empty_string", "merkle_root", "must not be empty");
  const rec: PcsRecord = {
    pcs_id, schema, version, shard_id, epoch, attempt, sent_at, seed,
    scales: scales as number[], N_j: nj as Record<string, number>,
    coh_star, D_hat, r, budget, v_star: v_star as number[], regime: regime as Regime, merkle_root,
  };
  if (Object.hasOwn(o, "sig")) {
    const sig = o["sig"];
    if (typeof sig !== "string") fail("wrong_type", "sig", "must be a string");
    else if (sig !== "" && !canonicalB64(sig)) fail("invalid_signature_encoding", "sig", "must be base64 (standard alphabet, padded)");
    else rec.sig = sig;
  }
  const ft = o["ft"];
  if (ft !== undefined && ft !== null) {
    if (typeof ft !== "object" || Array.isArray(ft)) fail("wrong_type", "ft", "must be an object");
    const f = ft as Record<string, unknown>;
    const out: FaultTolerance = {};
    const isInt = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x);
    if (f["outbox_seq"] != null) out.outbox_seq = isInt(f["outbox_seq"]) ? f["outbox_seq"] : fail("wrong_type", "ft.outbox_seq", "must be an integer");
    if (f["degraded"] != null) out.degraded = typeof f["degraded"] === "boolean" ? f["degraded"] : fail("wrong_type", "ft.degraded", "must be a boolean");
    if (f["fallbacks"] != null) {
      const fb = f["fallbacks"];
      out.fallbacks = Array.isArray(fb) && fb.every((x) => typeof x === "string") ? (fb as string[]) : fail("wrong_type", "ft.fallbacks", "must be an array of strings");
    }
    if (f["clock_skew_ms"] != null) out.clock_skew_ms = isInt(f["clock_skew_ms"]) ? f["clock_skew_ms"] : fail("wrong_type", "ft.clock_skew_ms", "must be an integer");
    rec.ft = out;
  }
  return rec;
}

/** JSON.parse then recordFromObject; unparsable text is `malformed_json`. */
export function parseRecord(text: string): PcsRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new MalformedRecordError("malformed_json", null, e instanceof Error ? e.message : String(e));
  }
  return recordFromObject(doc);
}

/** What an agent measured; `build` derives the rest. */
export interface BuildInput {
  shard_id: string;
  epoch: number;
  merkle_root: string;
  scales: number[];
  N_j: Record<string, number>;
  coh_star: number;
  r: number;
  v_star?: number[];
  seed?: number;
  attempt?: number;
  sent_at?: Date;
  ft?: FaultTolerance;
}

/**
 * A complete, unsigned record: pcs_id from (merkle_root, epoch, shard_id), D_hat by the same
 * Theil–Sen estimate the server recomputes, regime and budget under `policy`, numbers rounded
 * to 9 places. Sign it with `signRecord`.
 */
export async function build(input: BuildInput, policy: Policy = DEFAULT_POLICY): Promise<PcsRecord> {
  if (input.shard_id === "") throw new PcsValueError("shard_id", '""', "must not be empty");
  if (!HEX64.test(input.merkle_root)) throw new PcsValueError("merkle_root", JSON.stringify(input.merkle_root), "must be 64 lowercase hex");
  const dHat = theilSenDHat(input.scales, input.N_j);
  if (dHat === null) throw new PcsValueError("scales", JSON.stringify(input.scales), "need at least 2 distinct scales, each with N_j > 0");
  const coh = round9(input.coh_star);
  const r = round9(input.r);
  const rec: PcsRecord = {
    pcs_id: await computePcsId(input.merkle_root, input.epoch, input.shard_id),
    schema: SCHEMA,
    version: VERSION,
    shard_id: input.shard_id,
    epoch: input.epoch,
    attempt: input.attempt ?? 1,
    sent_at: (input.sent_at ?? new Date()).toISOString(),
    seed: input.seed ?? 0,
    scales: [...input.scales],
    N_j: { ...input.N_j },
    coh_star: coh,
    v_star: [...(input.v_star ?? [])],
    D_hat: dHat,
    r,
    regime: regimeFor(dHat, coh, policy),
    budget: budgetFor(dHat, coh, r, policy),
    merkle_root: input.merkle_root,
  };
  if (input.ft !== undefined) rec.ft = input.ft;
  return rec;
}

/** Sets `record.sig` to the signature of its signed fields and returns the record. */
export async function signRecord<R extends PcsRecord>(record: R, signer: Signer): Promise<R> {
  record.sig = await sign(signedFields(record), signer);
  return record;
}
