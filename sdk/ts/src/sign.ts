import { digest, type SignedFields } from "./canonical.js";
import { PcsValueError } from "./errors.js";

/** Bytes backed by a plain ArrayBuffer, as Web Crypto takes them. */
export type Bytes = Uint8Array<ArrayBuffer>;

export type Alg = "hmac" | "ed25519";

/** Signs the 32-byte digest of a canonical payload (SPEC §2 step 5); padded standard base64. */
export interface Signer {
  readonly alg: Alg;
  signDigest(digest: Bytes): Promise<string>;
}

/** Checks a base64 signature over a digest (in constant time, by Web Crypto). */
export interface Verifier {
  readonly alg: Alg;
  verifyDigest(digest: Bytes, sig: string): Promise<boolean>;
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;
const encoder = new TextEncoder();

export function toBase64(b: Bytes): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

/** Decodes padded standard base64 strictly (no URL alphabet, no whitespace, canonical padding bits); null if invalid. */
export function fromBase64(s: string): Bytes | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    return null;
  }
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return toBase64(out) === s ? out : null;
}

/**
 * A tenant's shared secret. The HMAC key is the UTF-8 bytes of the secret and the message
 * is the digest, not the payload ("pre-hash HMAC"): 44-character signatures.
 */
export class HmacKey implements Signer, Verifier {
  readonly alg = "hmac" as const;
  readonly #key: Promise<CryptoKey>;

  constructor(secret: string) {
    let raw = encoder.encode(secret);
    // Web Crypto refuses an empty HMAC key; HMAC pads short keys with zeros to the block
    // size, so 64 zero bytes is the same key.
    if (raw.length === 0) raw = new Uint8Array(64);
    this.#key = subtle().importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  }

  async signDigest(d: Bytes): Promise<string> {
    return toBase64(new Uint8Array(await subtle().sign("HMAC", await this.#key, d)));
  }

  async verifyDigest(d: Bytes, sig: string): Promise<boolean> {
    const b = fromBase64(sig);
    if (b === null || b.length !== 32) return false;
    return subtle().verify("HMAC", await this.#key, b, d);
  }
}

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): Web Crypto imports private keys only so.
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

function base64UrlToBytes(s: string): Bytes {
  const b = fromBase64(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));
  if (b === null) throw new Error("invalid base64url from Web Crypto");
  return b;
}

/** An Ed25519 private key; pure Ed25519 over the digest: 88-character signatures. */
export class Ed25519Key implements Signer {
  readonly alg = "ed25519" as const;
  private constructor(
    readonly privateKey: CryptoKey,
    readonly publicKey: Ed25519PublicKey,
  ) {}

  /** From the 32-byte RFC 8032 seed. */
  static async fromSeed(seed: Bytes): Promise<Ed25519Key> {
    if (seed.length !== 32) throw new PcsValueError("ed25519_seed", `${seed.length} bytes`, "must be 32 bytes");
    const pkcs8 = new Uint8Array(48);
    pkcs8.set(PKCS8_ED25519_PREFIX);
    pkcs8.set(seed, 16);
    const priv = await subtle().importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await subtle().exportKey("jwk", priv);
    if (jwk.x === undefined) throw new Error("Web Crypto exported no public key");
    const pub = await Ed25519PublicKey.fromBytes(base64UrlToBytes(jwk.x));
    return new Ed25519Key(priv, pub);
  }

  /** From the seed in padded standard base64. */
  static async fromSeedB64(seed: string): Promise<Ed25519Key> {
    const b = fromBase64(seed);
    if (b === null) throw new PcsValueError("ed25519_seed", seed, "not padded standard base64");
    return Ed25519Key.fromSeed(b);
  }

  async signDigest(d: Bytes): Promise<string> {
    return toBase64(new Uint8Array(await subtle().sign({ name: "Ed25519" }, this.privateKey, d)));
  }
}

/** An Ed25519 public key: 32 raw bytes, base64 in tenants files. */
export class Ed25519PublicKey implements Verifier {
  readonly alg = "ed25519" as const;
  private constructor(
    readonly bytes: Bytes,
    readonly key: CryptoKey,
  ) {}

  static async fromBytes(b: Bytes): Promise<Ed25519PublicKey> {
    if (b.length !== 32) throw new PcsValueError("ed25519_public_key", `${b.length} bytes`, "must be 32 bytes");
    const key = await subtle().importKey("raw", b, { name: "Ed25519" }, true, ["verify"]);
    return new Ed25519PublicKey(Uint8Array.from(b), key);
  }

  static async fromB64(b64: string): Promise<Ed25519PublicKey> {
    const b = fromBase64(b64);
    if (b === null) throw new PcsValueError("ed25519_public_key", b64, "not padded standard base64");
    return Ed25519PublicKey.fromBytes(b);
  }

  toString(): string {
    return toBase64(this.bytes);
  }

  async verifyDigest(d: Bytes, sig: string): Promise<boolean> {
    const b = fromBase64(sig);
    if (b === null || b.length !== 64) return false;
    return subtle().verify({ name: "Ed25519" }, this.key, b, d);
  }
}

/** The signature of the 8 signed fields. */
export async function sign(f: SignedFields, signer: Signer): Promise<string> {
  return signer.signDigest(await digest(f));
}

/** Whether `sig` is a valid signature of the 8 signed fields under `verifier`. */
export async function verify(f: SignedFields, verifier: Verifier, sig: string): Promise<boolean> {
  let d: Bytes;
  try {
    d = await digest(f);
  } catch {
    return false;
  }
  return verifier.verifyDigest(d, sig);
}
