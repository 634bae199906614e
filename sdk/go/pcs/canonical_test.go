package pcs

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"testing"
)

func TestSigningVectors(t *testing.T) {
	doc := loadVectors(t)
	if len(doc.Signing) < 9 {
		t.Fatalf("only %d signing vectors; the file must hold at least the 9 golden ones", len(doc.Signing))
	}
	failures := 0
	for _, v := range doc.Signing {
		t.Run(v.Name, func(t *testing.T) {
			defer func() {
				if t.Failed() {
					failures++
				}
			}()
			s, err := ParseSigned(v.PCS)
			if err != nil {
				t.Fatalf("ParseSigned: %v", err)
			}
			payload, err := CanonicalPayload(s)
			if err != nil {
				t.Fatalf("CanonicalPayload: %v", err)
			}
			if string(payload) != v.Payload {
				t.Fatalf("payload\n got %s\nwant %s", payload, v.Payload)
			}
			d := sha256.Sum256(payload)
			if got := hex.EncodeToString(d[:]); got != v.SHA256 {
				t.Errorf("sha256 = %s, want %s", got, v.SHA256)
			}
			hk := HMACKey{Secret: v.HMACKey}
			if got, _ := Sign(s, hk); got != v.HMACSig {
				t.Errorf("hmac_sig = %s, want %s", got, v.HMACSig)
			}
			if !Verify(s, hk, v.HMACSig) {
				t.Errorf("the vector's hmac_sig does not verify")
			}
			ek, err := Ed25519FromSeedB64(v.Ed25519SeedB64)
			if err != nil {
				t.Fatal(err)
			}
			if got := ek.Public().String(); got != v.Ed25519PubB64 {
				t.Errorf("ed25519 public key = %s, want %s", got, v.Ed25519PubB64)
			}
			if got, _ := Sign(s, ek); got != v.Ed25519Sig {
				t.Errorf("ed25519_sig = %s, want %s", got, v.Ed25519Sig)
			}
			pub, err := ParseEd25519PublicKey(v.Ed25519PubB64)
			if err != nil {
				t.Fatal(err)
			}
			if !Verify(s, pub, v.Ed25519Sig) {
				t.Errorf("the vector's ed25519_sig does not verify")
			}
			wrong := s
			wrong.Epoch++
			if Verify(wrong, pub, v.Ed25519Sig) || Verify(wrong, hk, v.HMACSig) {
				t.Errorf("a signature verifies for a different epoch")
			}
		})
	}
	if failures > 0 {
		t.Errorf("%d out of %d signing vectors failed", failures, len(doc.Signing))
	}
}

func TestPCSIDVectors(t *testing.T) {
	doc := loadVectors(t)
	if len(doc.PCSID) == 0 {
		t.Fatal("no pcs_id vectors")
	}
	for _, v := range doc.PCSID {
		if got := ComputePCSID(v.MerkleRoot, v.Epoch, v.ShardID); got != v.PCSID {
			t.Errorf("ComputePCSID(%q, %d, %q) = %s, want %s", v.MerkleRoot, v.Epoch, v.ShardID, got, v.PCSID)
		}
	}
}

// Each expected text was checked with Python:
//
//	python3 -c 'from decimal import *; x=2.675; print(repr(float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP))))'
func TestCanonicalFloat(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{1, "1.0"}, {0.5, "0.5"}, {5e-05, "5e-05"}, {1e-07, "1e-07"}, {0.0001, "0.0001"},
		{math.Copysign(0, -1), "-0.0"}, {0, "0.0"}, {-1e-12, "-0.0"}, {-4e-10, "-0.0"},
		{-5e-10, "-1e-09"}, {5e-10, "1e-09"}, {4.999999999e-10, "0.0"}, {1.5e-09, "2e-09"},
		{2.5e-09, "3e-09"}, {-2.5e-09, "-3e-09"},
		{2.675, "2.675"}, {1.2345678905, "1.234567891"}, {-1.2345678905, "-1.234567891"},
		{0.1234567885, "0.123456789"}, // shortest repr 0.1234567885 rounds up on the decimal, not the binary value
		{0.30000000000000004, "0.3"}, {0.9999999999, "1.0"}, {0.999999999499, "0.999999999"},
		{1e16, "1e+16"}, {1.2345e16, "1.2345e+16"}, {9999999999999998, "9999999999999998.0"},
		{1e22, "1e+22"}, {123456789, "123456789.0"}, {1e15, "1000000000000000.0"},
		{123456.1234567895, "123456.12345679"}, {1.0000000004999, "1.0"}, {9.9999999995e-05, "0.0001"},
		{1.7976931348623157e308, "1.7976931348623157e+308"}, {5e-324, "0.0"}, {-5e-324, "-0.0"},
		{0.000123456789, "0.000123457"}, {0.00001, "1e-05"}, {-0.00005, "-5e-05"},
		{999999999.9999999995, "1000000000.0"},
	}
	for _, c := range cases {
		got, err := CanonicalFloat(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalFloat(%v) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := CanonicalFloat(bad); err == nil {
			t.Errorf("CanonicalFloat(%v) accepted a non-finite number", bad)
		}
	}
}

func TestFormatFloatIsPythonRepr(t *testing.T) {
	cases := map[float64]string{
		1e-05: "1e-05", 0.0001: "0.0001", 1e16: "1e+16", 1e15: "1000000000000000.0",
		123.456: "123.456", 1e100: "1e+100", 1.5e-300: "1.5e-300", -2.5: "-2.5", 0.1: "0.1",
	}
	for in, want := range cases {
		if got := FormatFloat(in); got != want {
			t.Errorf("FormatFloat(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	cases := map[string]string{
		"plain":            `"plain"`,
		"a\"b\\c":          `"a\"b\\c"`,
		"\n\r\t\b\f":       `"\n\r\t\b\f"`,
		"\x00\x1f\x7f~ /":  `"\u0000\u001f\u007f~ /"`,
		"<>&'":             `"<>&'"`,
		"é東":               `"\u00e9\u6771"`,
		"😀":                `"\ud83d\ude00"`,
		"\U0010ffff\u2028": `"\udbff\udfff\u2028"`,
	}
	for in, want := range cases {
		got, err := AppendString(nil, in)
		if err != nil || string(got) != want {
			t.Errorf("AppendString(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := AppendString(nil, "\xff"); err == nil {
		t.Error("AppendString accepted invalid UTF-8")
	}
	if _, err := AppendString(nil, "\xed\xa0\x80"); err == nil {
		t.Error("AppendString accepted an encoded lone surrogate")
	}
}

func TestCanonicalPayloadRefusesBadInput(t *testing.T) {
	base := Signed{PCSID: "x", MerkleRoot: "m", Epoch: 1, ShardID: "s", DHat: 1, CohStar: 1, R: 1, Budget: 1}
	bad := []Signed{base, base, base, base}
	bad[0].Epoch = MaxEpoch
	bad[1].Epoch = -1
	bad[2].Budget = math.NaN()
	bad[3].ShardID = "\xc3"
	for i, s := range bad {
		if _, err := CanonicalPayload(s); err == nil {
			t.Errorf("case %d: CanonicalPayload accepted %+v", i, s)
		}
	}
	base.Epoch = MaxEpoch - 1
	p, err := CanonicalPayload(base)
	if err != nil || string(p) != `{"D_hat":1.0,"budget":1.0,"coh_star":1.0,"epoch":9007199254740991,"merkle_root":"m","pcs_id":"x","r":1.0,"shard_id":"s"}` {
		t.Errorf("epoch 2^53-1: %s, %v", p, err)
	}
}
