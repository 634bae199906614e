#!/usr/bin/env node
/**
 * The TypeScript SDK's conformance command (issue 3's interface). Reads JSON lines on stdin,
 * each `{"pcs": {...}, "hmac_key": "...", "ed25519_seed_b64": "..."}`, and writes one JSON
 * line for each: `{"payload", "sha256", "hmac_sig", "ed25519_sig"}`. A line that cannot be
 * signed yields `{"error": code, "detail": text}` and the command exits 1 after the last
 * line. A missing key yields null for that signature.
 */
import { createInterface } from "node:readline";
import { canonicalPayload, sha256Hex, type SignedFields } from "./canonical.js";
import { Ed25519Key, HmacKey } from "./sign.js";

interface Input {
  pcs: SignedFields;
  hmac_key?: string | null;
  ed25519_seed_b64?: string | null;
}

async function one(line: string): Promise<Record<string, string | null>> {
  const input = JSON.parse(line) as Input;
  if (typeof input !== "object" || input === null || typeof input.pcs !== "object" || input.pcs === null) {
    throw new Error('each line must be an object with a "pcs" object');
  }
  const p = input.pcs;
  const fields: SignedFields = {
    pcs_id: p.pcs_id, merkle_root: p.merkle_root, epoch: p.epoch, shard_id: p.shard_id,
    D_hat: p.D_hat, coh_star: p.coh_star, r: p.r, budget: p.budget,
  };
  const payload = canonicalPayload(fields);
  const sha = await sha256Hex(payload);
  const digest = Uint8Array.from(sha.match(/../g) ?? [], (h) => parseInt(h, 16));
  const hmac = input.hmac_key == null ? null : await new HmacKey(input.hmac_key).signDigest(digest);
  const ed = input.ed25519_seed_b64 == null ? null : await (await Ed25519Key.fromSeedB64(input.ed25519_seed_b64)).signDigest(digest);
  return { payload, sha256: sha, hmac_sig: hmac, ed25519_sig: ed };
}

async function main(): Promise<number> {
  let status = 0;
  let n = 0;
  const out: string[] = [];
  for await (const raw of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    n++;
    const line = raw.trim();
    if (line === "") continue;
    try {
      out.push(JSON.stringify(await one(line)));
    } catch (e) {
      status = 1;
      const detail = e instanceof Error ? e.message : String(e);
      process.stderr.write(`pcs-conformance: line ${n}: ${detail}\n`);
      out.push(JSON.stringify({ error: "invalid_input", detail }));
    }
    if (out.length >= 256) process.stdout.write(out.splice(0).join("\n") + "\n");
  }
  if (out.length > 0) process.stdout.write(out.join("\n") + "\n");
  return status;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`pcs-conformance: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
