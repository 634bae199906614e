import { PcsValueError } from "./errors.js";

/** Exclusive upper bound of an epoch (SPEC §1): every JSON reader holds it exactly. */
export const MAX_EPOCH = 2 ** 53;

/** Exactly the 8 fields covered by a signature (SPEC §2 step 1). */
export interface SignedFields {
  pcs_id: string;
  merkle_root: string;
  epoch: number;
  shard_id: string;
  D_hat: number;
  coh_star: number;
  r: number;
  budget: number;
}

/** Shortest round-trip digits of x > 0 and the exponent of the first: x ≈ d.ddd × 10^exp. */
function shortestDigits(x: number): [string, number] {
  // toExponential() without an argument gives as many digits as needed to identify x
  // uniquely: the shortest round-trip representation.
  const s = x.toExponential();
  const e = s.indexOf("e");
  return [s.slice(0, e).replace(".", ""), Number(s.slice(e + 1))];
}

/**
 * Rounds x to 9 decimal places, half away from zero, applied to the shortest round-trip
 * decimal representation of x (SPEC §2 step 2) — Python's
 * `float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP))`. The rounding works on
 * the digit string, never with float arithmetic: 2.675 is stored as 2.67499999…, but its
 * shortest representation "2.675" is what gets rounded.
 *
 * Requires a finite number; otherwise throws PcsValueError.
 */
export function round9(x: number): number {
  if (!Number.isFinite(x)) {
    throw new PcsValueError("number", String(x), "not finite");
  }
  if (x === 0) return x;
  const neg = x < 0;
  const [digits, exp] = shortestDigits(Math.abs(x));
  // digits[i] has place value 10^(exp - i); keep those with place ≥ 10^-9.
  const keep = exp + 10;
  if (keep >= digits.length) return x; // already exact to 9 places
  let kept = keep > 0 ? digits.slice(0, keep).split("") : [];
  // With keep < 0 the first discarded digit is an implicit leading zero: rounds to zero.
  const roundUp = keep >= 0 && (digits[keep] ?? "0") >= "5";
  if (roundUp) {
    let i = kept.length - 1;
    for (; i >= 0; i--) {
      if (kept[i] === "9") {
        kept[i] = "0";
        continue;
      }
      kept[i] = String(Number(kept[i]) + 1);
      break;
    }
    if (i < 0) kept = ["1", ...kept];
  }
  const text = (kept.length > 0 ? kept.join("") : "0") + "e-9";
  // "-0e-9" is -0, as Python's float(Decimal("-0E-9")) is -0.0.
  return Number((neg ? "-" : "") + text);
}

/**
 * Prints x exactly as Python's `repr(x)`: shortest round-trip digits, `1.0` for integral
 * values, exponent form when the decimal exponent is < −4 or ≥ 16 with a sign and at
 * least two digits (`5e-05`, `1e+16`), `-0.0` for negative zero; `nan`, `inf`, `-inf` for
 * non-finite values (which never reach a payload).
 */
export function formatFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [digits, exp] = shortestDigits(Math.abs(x));
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = String(Math.abs(exp)).padStart(2, "0");
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/** round9 then formatFloat: the text a signed number takes in the payload. */
export function canonicalFloat(x: number): string {
  return formatFloat(round9(x));
}

/** Whether s is well-formed UTF-16 (no lone surrogate), i.e. valid Unicode. */
export function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

const SHORT_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: "\\\\",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x08: "\\b",
  0x0c: "\\f",
};

/**
 * `s` as an ASCII-only JSON string (SPEC §2 step 3): `\"` `\\` `\n` `\r` `\t` `\b` `\f`,
 * every other character outside 0x20–0x7E as `\uXXXX` lowercase hex, surrogate pairs above
 * U+FFFF (JavaScript strings already hold them), 0x7F escaped, `<>&` literal.
 *
 * Requires valid Unicode: a lone surrogate throws PcsValueError.
 */
export function encodeString(s: string, field = "string"): string {
  if (!isWellFormed(s)) throw new PcsValueError(field, JSON.stringify(s), "not valid Unicode (lone surrogate)");
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) out += short;
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    else out += "\\u" + c.toString(16).padStart(4, "0");
  }
  return out + '"';
}

function checkEpoch(epoch: number): void {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch >= MAX_EPOCH) {
    throw new PcsValueError("epoch", String(epoch), "must be an integer in [0, 2^53)");
  }
}

function numberText(name: string, v: number): string {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new PcsValueError(name, String(v), "must be a finite number");
  }
  return canonicalFloat(v);
}

function stringText(name: string, v: string): string {
  if (typeof v !== "string") throw new PcsValueError(name, String(v), "must be a string");
  return encodeString(v, name);
}

/**
 * The canonical payload (SPEC §2 steps 1–3): the 8 signed fields as compact JSON with keys
 * sorted by code point (`D_hat` first). Integer-valued numbers are floats (`1.0`).
 */
export function canonicalPayload(f: SignedFields): string {
  checkEpoch(f.epoch);
  return (
    `{"D_hat":${numberText("D_hat", f.D_hat)}` +
    `,"budget":${numberText("budget", f.budget)}` +
    `,"coh_star":${numberText("coh_star", f.coh_star)}` +
    `,"epoch":${String(f.epoch)}` +
    `,"merkle_root":${stringText("merkle_root", f.merkle_root)}` +
    `,"pcs_id":${stringText("pcs_id", f.pcs_id)}` +
    `,"r":${numberText("r", f.r)}` +
    `,"shard_id":${stringText("shard_id", f.shard_id)}}`
  );
}

const encoder = new TextEncoder();

function hex(b: ArrayBuffer): string {
  return Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of the canonical payload (SPEC §2 step 4): the bytes that get signed. */
export async function digest(f: SignedFields): Promise<Uint8Array<ArrayBuffer>> {
  const payload = encoder.encode(canonicalPayload(f));
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", payload));
}

/** Hex SHA-256 of a string's UTF-8 bytes. */
export async function sha256Hex(text: string): Promise<string> {
  return hex(await globalThis.crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/**
 * `sha256_hex(merkle_root + "|" + str(epoch) + "|" + shard_id)` over UTF-8 (SPEC §3 step 4).
 */
export async function computePcsId(merkleRoot: string, epoch: number, shardId: string): Promise<string> {
  checkEpoch(epoch);
  if (!isWellFormed(merkleRoot) || !isWellFormed(shardId)) {
    throw new PcsValueError("shard_id", JSON.stringify(shardId), "not valid Unicode (lone surrogate)");
  }
  return sha256Hex(`${merkleRoot}|${String(epoch)}|${shardId}`);
}
