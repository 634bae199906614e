// The one language-neutral vector file, loaded from the repository (never a copy):
// sdk/vectors/pcs-vectors.json, located relative to this test (build/test/ → sdk/vectors/).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  canonicalPayload, computePcsId, Ed25519Key, Ed25519PublicKey, evaluate, HmacKey, KeySet,
  makePolicy, sha256Hex, sign, verify, type KeySetDocument, type Policy, type SignedFields,
} from "@flk-pcs/sdk";

const here = dirname(fileURLToPath(import.meta.url));
const FILE = resolve(here, "..", "..", "..", "vectors", "pcs-vectors.json");

interface SigningVector {
  name: string; pcs: SignedFields; payload: string; sha256: string; hmac_key: string; hmac_sig: string;
  ed25519_seed_b64: string; ed25519_pub_b64: string; ed25519_sig: string;
}
interface VerificationVector {
  name: string; tenant: string; keys: KeySetDocument; received_at_ms: number; policy: Partial<Policy> | null;
  body: object; body_text?: string;
  expect: { http_status: number; status: string; accepted: boolean; escalated: boolean; reason: string | null;
    recomputed_D_hat: number | null; recomputed_budget: number | null; regime: string | null };
}
interface VectorFile {
  format: number;
  signing: SigningVector[];
  pcs_id: { merkle_root: string; epoch: number; shard_id: string; pcs_id: string }[];
  verification: VerificationVector[];
}

const doc = JSON.parse(readFileSync(FILE, "utf8")) as VectorFile;

test("the vector file is format 1 and has every section", () => {
  assert.equal(doc.format, 1);
  assert.ok(doc.signing.length >= 9, "the 9 golden signing vectors at least");
  assert.ok(doc.pcs_id.length > 0);
  assert.ok(doc.verification.length > 0, "verification vectors");
});

test("signing vectors", async (t) => {
  let failures = 0;
  for (const v of doc.signing) {
    await t.test(v.name, async () => {
      try {
        const payload = canonicalPayload(v.pcs);
        assert.equal(payload, v.payload);
        assert.equal(await sha256Hex(payload), v.sha256);
        const hk = new HmacKey(v.hmac_key);
        assert.equal(await sign(v.pcs, hk), v.hmac_sig);
        assert.ok(await verify(v.pcs, hk, v.hmac_sig));
        const ek = await Ed25519Key.fromSeedB64(v.ed25519_seed_b64);
        assert.equal(ek.publicKey.toString(), v.ed25519_pub_b64);
        assert.equal(await sign(v.pcs, ek), v.ed25519_sig);
        const pub = await Ed25519PublicKey.fromB64(v.ed25519_pub_b64);
        assert.ok(await verify(v.pcs, pub, v.ed25519_sig));
        const other = { ...v.pcs, epoch: v.pcs.epoch + 1 };
        assert.ok(!(await verify(other, pub, v.ed25519_sig)) && !(await verify(other, hk, v.hmac_sig)));
      } catch (e) {
        failures++;
        throw e;
      }
    });
  }
  assert.equal(failures, 0, `${failures} out of ${doc.signing.length} signing vectors failed`);
});

test("pcs_id vectors", async () => {
  for (const v of doc.pcs_id) {
    assert.equal(await computePcsId(v.merkle_root, v.epoch, v.shard_id), v.pcs_id, JSON.stringify(v));
  }
});

test("verification vectors", async (t) => {
  let failures = 0;
  for (const v of doc.verification) {
    await t.test(v.name, async () => {
      try {
        const keys = await KeySet.fromDocument(v.keys);
        const got = await evaluate(v.body_text ?? v.body, v.tenant, v.received_at_ms, keys, makePolicy(v.policy));
        const { key_id: _ignored, ...verdict } = got;
        assert.deepEqual(verdict, v.expect);
      } catch (e) {
        failures++;
        throw e;
      }
    });
  }
  assert.equal(failures, 0, `${failures} out of ${doc.verification.length} verification vectors failed`);
});
