import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalFloat, canonicalPayload, encodeString, formatFloat, MAX_EPOCH, PcsValueError, round9 } from "@flk-pcs/sdk";

// Each expected text is Python's: repr(float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP)))
const CASES: [number, string][] = [
  [1, "1.0"], [0.5, "0.5"], [5e-5, "5e-05"], [1e-7, "1e-07"], [0.0001, "0.0001"], [-0, "-0.0"], [0, "0.0"],
  [-1e-12, "-0.0"], [-4e-10, "-0.0"], [-5e-10, "-1e-09"], [5e-10, "1e-09"], [4.999999999e-10, "0.0"],
  [1.5e-9, "2e-09"], [2.5e-9, "3e-09"], [-2.5e-9, "-3e-09"], [2.675, "2.675"], [1.2345678905, "1.234567891"],
  [-1.2345678905, "-1.234567891"], [0.1234567885, "0.123456789"], [0.30000000000000004, "0.3"],
  [0.9999999999, "1.0"], [0.999999999499, "0.999999999"], [1e16, "1e+16"], [1.2345e16, "1.2345e+16"],
  [9999999999999998, "9999999999999998.0"], [1e22, "1e+22"], [123456789, "123456789.0"],
  [1e15, "1000000000000000.0"], [123456.1234567895, "123456.12345679"], [1.0000000004999, "1.0"],
  [9.9999999995e-5, "0.0001"], [1.7976931348623157e308, "1.7976931348623157e+308"], [5e-324, "0.0"],
  [-5e-324, "-0.0"], [0.000123456789, "0.000123457"], [0.00001, "1e-05"], [-0.00005, "-5e-05"],
  [999999999.9999999995, "1000000000.0"],
];

test("canonicalFloat rounds on the shortest decimal and prints like Python's repr", () => {
  for (const [x, want] of CASES) assert.equal(canonicalFloat(x), want, `canonicalFloat(${x})`);
});

test("formatFloat is Python's repr", () => {
  const cases: [number, string][] = [[1e-5, "1e-05"], [1e16, "1e+16"], [1e100, "1e+100"], [1.5e-300, "1.5e-300"], [-2.5, "-2.5"], [123.456, "123.456"]];
  for (const [x, want] of cases) assert.equal(formatFloat(x), want);
});

test("round9 refuses non-finite numbers", () => {
  for (const x of [NaN, Infinity, -Infinity]) assert.throws(() => round9(x), PcsValueError);
});

test("encodeString escapes to ASCII like json.dumps(ensure_ascii=True)", () => {
  const cases: [string, string][] = [
    ["plain", '"plain"'], ['a"b\\c', '"a\\"b\\\\c"'], ["\n\r\t\b\f", '"\\n\\r\\t\\b\\f"'],
    ["\x00\x1f\x7f~ /", '"\\u0000\\u001f\\u007f~ /"'], ["<>&'", `"<>&'"`], ["é東", '"\\u00e9\\u6771"'],
    ["😀", '"\\ud83d\\ude00"'], ["\u{10ffff}\u2028", '"\\udbff\\udfff\\u2028"'],
  ];
  for (const [s, want] of cases) assert.equal(encodeString(s), want);
  assert.throws(() => encodeString("\ud800x"), PcsValueError);
  assert.throws(() => encodeString("x\udc00"), PcsValueError);
});

test("canonicalPayload: epoch range and key order", () => {
  const base = { pcs_id: "x", merkle_root: "m", epoch: MAX_EPOCH - 1, shard_id: "s", D_hat: 1, coh_star: 1, r: 1, budget: 1 };
  assert.equal(
    canonicalPayload(base),
    '{"D_hat":1.0,"budget":1.0,"coh_star":1.0,"epoch":9007199254740991,"merkle_root":"m","pcs_id":"x","r":1.0,"shard_id":"s"}',
  );
  for (const bad of [{ epoch: MAX_EPOCH }, { epoch: -1 }, { epoch: 1.5 }, { budget: NaN }, { shard_id: "\udfff" }]) {
    assert.throws(() => canonicalPayload({ ...base, ...bad }), PcsValueError, JSON.stringify(bad));
  }
});
