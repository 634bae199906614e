import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import {
  build, check, Client, HmacKey, MalformedError, NetworkError, NotFoundError, parseRecord, parseRetryAfter,
  RateLimitedError, RejectedError, RetriesExhaustedError, signRecord, TooLargeError, UnauthorizedError,
  UnavailableError, verify, signedFields, type ClientOptions, type PcsRecord,
} from "@flk-pcs/sdk";

interface Seen { method: string; url: string; headers: IncomingMessage["headers"]; body: string }
interface Reply { status: number; body?: string; headers?: Record<string, string> }

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

/** A scripted fake of one region's gateway: /healthz answers `health`, other requests the script. */
async function gateway(script: Reply[], health = 200): Promise<{ url: string; seen: Seen[]; script: Reply[] }> {
  const seen: Seen[] = [];
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.url === "/healthz") {
        res.writeHead(health).end();
        return;
      }
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      const r = script.shift() ?? { status: 500, body: '{"error":"unscripted","detail":"no more answers"}' };
      res.writeHead(r.status, { "Content-Type": "application/json", ...(r.headers ?? {}) }).end(r.body ?? "");
    });
  });
  servers.push(srv);
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen, script };
}

const ACCEPTED = '{"request_id":"r1","status":"accepted","pcs_id":"p","tenant":"acme","accepted":true,"escalated":false,"regime":"mixed","recomputed_D_hat":2.0,"recomputed_budget":0.35,"dedup_hit":false,"policy_version":"v1","region":"eu"}';

function client(endpoints: string[], extra: Partial<ClientOptions> = {}): { c: Client; slept: number[] } {
  const slept: number[] = [];
  const c = new Client({
    endpoints, tenant: "acme", readToken: "read-tok", random: () => 1,
    sleep: async (ms) => void slept.push(ms), ...extra,
  });
  return { c, slept };
}

async function record(): Promise<PcsRecord> {
  const r = await build({
    shard_id: "shard-a", epoch: 7, merkle_root: "5f".repeat(32), scales: [2, 4, 8, 16],
    N_j: { "2": 4, "4": 16, "8": 64, "16": 256 }, coh_star: 0.5, r: 0.5, seed: 42,
    sent_at: new Date("2025-06-15T12:00:00.250Z"),
  });
  return signRecord(r, new HmacKey("acme-secret"));
}

test("build + sign: the record the vectors call accepted-basic, and it passes the local check", async () => {
  const r = await record();
  assert.equal(r.pcs_id, "fe1fd0ba0a443114d1d36371bbb07401c38f7a2ef182d0e79b5525548623c045");
  assert.equal(r.sig, "MW/EjZaAuYISMYcVswiA0xE6T1bA5kdb62ON7+3uJdI=");
  assert.deepEqual([r.D_hat, r.regime, r.budget], [2, "mixed", 0.35]);
  assert.equal((await check(r)).status, "accepted");
});

test("submit: 200 is an AcceptedOutcome; headers and body are right", async () => {
  const g = await gateway([{ status: 200, body: ACCEPTED }]);
  const { c } = client([g.url]);
  const rec = await record();
  const o = await c.submit(rec);
  assert.equal(o.status, "accepted");
  assert.equal(o.httpStatus, 200);
  assert.equal(o.region, "eu");
  const s = g.seen[0]!;
  assert.equal(s.method, "POST");
  assert.equal(s.url, "/v1/pcs/submit");
  assert.equal(s.headers["x-tenant-id"], "acme");
  assert.equal(s.headers["content-type"], "application/json");
  assert.match(String(s.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
  const back = parseRecord(s.body);
  assert.deepEqual(signedFields(back), signedFields(rec));
  assert.ok(await verify(signedFields(back), new HmacKey("acme-secret"), back.sig!));
});

test("202 escalated and 202 pending are outcomes, not errors", async () => {
  const g = await gateway([
    { status: 202, body: '{"request_id":"r2","status":"escalated","pcs_id":"p","tenant":"acme","accepted":true,"escalated":true,"reason":"regime_mismatch","dedup_hit":false}' },
    { status: 202, body: '{"request_id":"r3","status":"pending","pcs_id":"p","tenant":"acme","accepted":false,"escalated":false,"dedup_hit":false}', headers: { Location: "/v1/requests/r3" } },
  ]);
  const { c } = client([g.url]);
  const e = await c.submit(await record());
  assert.equal(e.status, "escalated");
  assert.equal(e.reason, "regime_mismatch");
  const p = await c.submit(await record(), { respondAsync: true });
  assert.equal(p.status, "pending");
  assert.equal(p.status === "pending" ? p.location : null, "/v1/requests/r3");
  assert.equal(g.seen[1]!.headers["prefer"], "respond-async");
});

test("400, 401 and 413 are typed and never retried", async () => {
  for (const [status, type] of [[400, MalformedError], [401, UnauthorizedError], [413, TooLargeError]] as const) {
    const g = await gateway([{ status, body: '{"error":"some_code","detail":"field x","request_id":"rq"}' }]);
    const { c, slept } = client([g.url]);
    await assert.rejects(c.submit(await record()), (e: unknown) => {
      assert.ok(e instanceof type, `${status}: ${String(e)}`);
      assert.equal(e.apiCode, "some_code");
      assert.equal(e.detail, "field x");
      assert.equal(e.requestId, "rq");
      assert.equal(e.status, status);
      return true;
    });
    assert.equal(g.seen.length, 1);
    assert.deepEqual(slept, []);
  }
});

test("Retry-After is honoured and the request id is kept across retries", async () => {
  const g = await gateway([
    { status: 429, body: '{"error":"rate_limited","detail":"slow down"}', headers: { "Retry-After": "3" } },
    { status: 503, body: '{"error":"backpressure","detail":"lag"}', headers: { "Retry-After": "1" } },
    { status: 200, body: ACCEPTED },
  ]);
  const { c, slept } = client([g.url]);
  await c.submit(await record(), { requestId: "my-req" });
  assert.deepEqual(slept, [3000, 1000]);
  assert.deepEqual(g.seen.map((s) => s.headers["x-request-id"]), ["my-req", "my-req", "my-req"]);
});

test("exponential backoff with jitter, then RetriesExhaustedError wrapping the last error", async () => {
  const g = await gateway([{ status: 502, body: "bad gateway" }, { status: 502 }, { status: 502 }, { status: 502 }]);
  const { c, slept } = client([g.url], { retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 300 }, random: () => 0.5 });
  await assert.rejects(c.submit(await record()), (e: unknown) => {
    assert.ok(e instanceof RetriesExhaustedError);
    assert.equal(e.code, "ERR_PCS_RETRIES_EXHAUSTED");
    assert.equal(e.attempts, 4);
    assert.ok(e.last instanceof UnavailableError && e.last.status === 502);
    return true;
  });
  assert.deepEqual(slept, [75, 150, 225]); // d/2 + 0.5·d/2 for d = 100, 200, 300 (capped)
});

test("a Retry-After beyond the limit ends the call at once", async () => {
  const g = await gateway([{ status: 429, body: '{"error":"quota_exhausted","detail":"daily"}', headers: { "Retry-After": "86400" } }]);
  const { c, slept } = client([g.url]);
  await assert.rejects(c.submit(await record()), (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 86_400_000);
  assert.deepEqual(slept, []);
});

test("failover: an unhealthy region is skipped", async () => {
  const eu = await gateway([], 503);
  const us = await gateway([{ status: 200, body: ACCEPTED }]);
  const { c } = client([eu.url, us.url]);
  const o = await c.submit(await record());
  assert.equal(o.endpoint, us.url);
  assert.equal(eu.seen.length, 0);
});

test("failover: a 503 mid-call moves to the other region at once with the same request id", async () => {
  const eu = await gateway([{ status: 503, body: '{"error":"wal_unavailable","detail":"no ack"}', headers: { "Retry-After": "5" } }]);
  const us = await gateway([{ status: 200, body: ACCEPTED }, { status: 200, body: ACCEPTED }]);
  const { c, slept } = client([eu.url, us.url]);
  const o = await c.submit(await record());
  assert.equal(o.endpoint, us.url);
  assert.deepEqual(slept, []);
  assert.equal(eu.seen[0]!.headers["x-request-id"], us.seen[0]!.headers["x-request-id"]);
  assert.equal((await c.submit(await record())).endpoint, us.url, "the failed region stays avoided");
});

test("failover: connection refused", async () => {
  const dead = await gateway([]);
  servers.pop()!.close();
  await new Promise((r) => setTimeout(r, 10));
  const us = await gateway([{ status: 200, body: ACCEPTED }]);
  const { c } = client([dead.url, us.url]);
  assert.equal((await c.submit(await record())).endpoint, us.url);
  const only = client([dead.url], { retry: { maxAttempts: 3 } });
  await assert.rejects(only.c.submit(await record()), (e: unknown) => e instanceof RetriesExhaustedError && e.last instanceof NetworkError);
  assert.equal(only.slept.length, 2);
});

test("pending polling, outcome reads with the read token, rejections", async () => {
  let polls = 0;
  const srv = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const json = (status: number, body: string, headers: Record<string, string> = {}): void => void res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(body);
      if (req.url === "/healthz") return json(200, "");
      if (req.url === "/v1/pcs/submit") return json(202, '{"request_id":"req-9","status":"pending","pcs_id":"p","tenant":"acme","accepted":false,"escalated":false,"dedup_hit":false}', { Location: "/v1/requests/req-9" });
      if (req.headers.authorization !== "Bearer read-tok") return json(401, '{"error":"bad_read_token","detail":"no"}');
      if (req.url === "/v1/requests/req-9") return ++polls < 3 ? json(200, '{"request_id":"req-9","status":"pending"}') : json(200, ACCEPTED);
      if (req.url === "/v1/requests/req-bad") return json(200, '{"request_id":"req-bad","status":"rejected","http_status":401,"error":"bad_signature","detail":"no key verifies"}');
      if (req.url === "/v1/pcs/known") return json(200, ACCEPTED);
      return json(404, '{"error":"not_found","detail":"unknown pcs_id"}');
    });
  });
  servers.push(srv);
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const { c, slept } = client([url]);
  const o = await c.submitAndWait(await record());
  assert.equal(o.status, "accepted");
  assert.equal(polls, 3);
  assert.deepEqual(slept, [100, 200, 400]);
  assert.equal((await c.getOutcome("known")).accepted, true);
  await assert.rejects(c.getOutcome("unknown"), NotFoundError);
  await assert.rejects(c.getRequest("req-bad"), (e: unknown) => e instanceof RejectedError && e.error instanceof UnauthorizedError && e.error.apiCode === "bad_signature");
  const anon = new Client({ endpoints: [url], tenant: "acme" });
  await assert.rejects(anon.getOutcome("known"), UnauthorizedError);
});

test("an unsigned record is refused before anything is sent", async () => {
  const { c } = client(["http://127.0.0.1:1"]);
  const r = await record();
  delete r.sig;
  await assert.rejects(c.submit(r), (e: unknown) => e instanceof Error && (e as { code?: string }).code === "ERR_PCS_INVALID_VALUE");
});

test("parseRetryAfter reads seconds and HTTP-dates", () => {
  const now = Date.UTC(2025, 0, 1);
  assert.equal(parseRetryAfter("7", now), 7000);
  assert.equal(parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now), 30000);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter(null, now), null);
});
