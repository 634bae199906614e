package pcs

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxEpoch is the exclusive upper bound of an epoch (SPEC §1: 0 ≤ epoch < 2^53), so
// that every language's JSON reader holds it exactly.
const MaxEpoch = int64(1) << 53

// Signed holds exactly the 8 fields covered by a signature (SPEC §2 step 1).
// Fields such as scales, N_j and regime are not signed.
type Signed struct {
	PCSID      string
	MerkleRoot string
	Epoch      int64
	ShardID    string
	DHat       float64
	CohStar    float64
	R          float64
	Budget     float64
}

// Round9 rounds x to 9 decimal places, half away from zero, applied to the shortest
// round-trip decimal representation of x (SPEC §2 step 2), which is what Python's
// float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP)) computes.
// The rounding is done on the decimal digit string, never with float arithmetic:
// 2.675 is stored as 2.67499999999999982236431605997495353221893310546875, but its
// shortest representation "2.675" is what gets rounded.
//
// Requires x to be finite; a NaN or an infinity is a *ValueError.
func Round9(x float64) (float64, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, &ValueError{Field: "number", Value: strconv.FormatFloat(x, 'g', -1, 64), Reason: "not finite"}
	}
	if x == 0 {
		return x, nil
	}
	neg := x < 0
	digits, exp := shortestDigits(math.Abs(x))
	// digits[i] has place value 10^(exp-i); keep those with place ≥ 10^-9.
	keep := exp + 10
	if keep >= len(digits) {
		return x, nil // already exact to 9 places
	}
	var kept []byte
	roundUp := false
	switch {
	case keep < 0:
		// The first discarded digit is an implicit leading zero: rounds to zero.
	default:
		kept = []byte(digits[:keep])
		roundUp = digits[keep] >= '5'
	}
	if roundUp {
		i := len(kept) - 1
		for ; i >= 0; i-- {
			if kept[i] == '9' {
				kept[i] = '0'
				continue
			}
			kept[i]++
			break
		}
		if i < 0 {
			kept = append([]byte{'1'}, kept...)
		}
	}
	if len(kept) == 0 {
		kept = []byte{'0'}
	}
	s := string(kept) + "e-9"
	if neg {
		s = "-" + s // "-0e-9" parses to -0.0, as Python's float(Decimal("-0E-9")) does
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, &ValueError{Field: "number", Value: s, Reason: err.Error()}
	}
	return v, nil
}

// shortestDigits returns the shortest round-trip decimal digits of x > 0 and the
// exponent of the first digit: x ≈ d.ddd × 10^exp.
func shortestDigits(x float64) (string, int) {
	s := strconv.FormatFloat(x, 'e', -1, 64) // e.g. "1.2345e-07"
	mant, expPart, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expPart)
	return strings.Replace(mant, ".", "", 1), exp
}

// FormatFloat prints x exactly as Python's repr(x): the shortest round-trip digits,
// "1.0" for integral values, exponent form when the decimal exponent is < −4 or ≥ 16
// with a sign and at least two digits ("5e-05", "1e+16"), and "-0.0" for negative zero.
// A NaN or an infinity prints as "nan", "inf" or "-inf", as Python does; such values
// are refused before they reach a payload.
func FormatFloat(x float64) string {
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	case x == 0:
		if math.Signbit(x) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if x < 0 {
		sign = "-"
	}
	digits, exp := shortestDigits(math.Abs(x))
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		esign := "+"
		if exp < 0 {
			esign = "-"
			exp = -exp
		}
		e := strconv.Itoa(exp)
		if len(e) < 2 {
			e = "0" + e
		}
		return sign + m + "e" + esign + e
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

// CanonicalFloat is Round9 followed by FormatFloat: the text a signed number takes
// in the payload.
func CanonicalFloat(x float64) (string, error) {
	v, err := Round9(x)
	if err != nil {
		return "", err
	}
	return FormatFloat(v), nil
}

// AppendString appends s as an ASCII-only JSON string (SPEC §2 step 3): \" \\ \n \r \t
// \b \f, every other character outside 0x20–0x7E as \uXXXX in lowercase hex, UTF-16
// surrogate pairs above U+FFFF; 0x7F is escaped too and <>& stay literal.
//
// Requires s to be valid UTF-8 (a Go string cannot hold a lone surrogate validly);
// otherwise it returns a *ValueError.
func AppendString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return b, &ValueError{Field: "string", Value: strconv.Quote(s), Reason: "not valid UTF-8"}
	}
	const hexdigits = "0123456789abcdef"
	u := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hexdigits[r>>12&0xf], hexdigits[r>>8&0xf], hexdigits[r>>4&0xf], hexdigits[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch r {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			switch {
			case r >= 0x20 && r <= 0x7e:
				b = append(b, byte(r))
			case r < 0x10000:
				b = u(b, r)
			default:
				hi, lo := utf16.EncodeRune(r)
				b = u(u(b, hi), lo)
			}
		}
	}
	return append(b, '"'), nil
}

// CanonicalPayload returns the bytes that are hashed and signed (SPEC §2 steps 1–3):
// the 8 signed fields as compact JSON with keys sorted by code point.
//
// Requires finite numbers, valid UTF-8 strings and 0 ≤ Epoch < 2^53; a violation is a
// *ValueError naming the field.
func CanonicalPayload(s Signed) ([]byte, error) {
	if s.Epoch < 0 || s.Epoch >= MaxEpoch {
		return nil, &ValueError{Field: "epoch", Value: strconv.FormatInt(s.Epoch, 10), Reason: "must be in [0, 2^53)"}
	}
	nums := [4]struct {
		name string
		v    float64
	}{{"D_hat", s.DHat}, {"budget", s.Budget}, {"coh_star", s.CohStar}, {"r", s.R}}
	var txt [4]string
	for i, n := range nums {
		t, err := CanonicalFloat(n.v)
		if err != nil {
			return nil, &ValueError{Field: n.name, Value: FormatFloat(n.v), Reason: "not finite"}
		}
		txt[i] = t
	}
	b := make([]byte, 0, 256)
	var err error
	b = append(b, `{"D_hat":`...)
	b = append(b, txt[0]...)
	b = append(b, `,"budget":`...)
	b = append(b, txt[1]...)
	b = append(b, `,"coh_star":`...)
	b = append(b, txt[2]...)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendInt(b, s.Epoch, 10)
	b = append(b, `,"merkle_root":`...)
	if b, err = AppendString(b, s.MerkleRoot); err != nil {
		return nil, field("merkle_root", err)
	}
	b = append(b, `,"pcs_id":`...)
	if b, err = AppendString(b, s.PCSID); err != nil {
		return nil, field("pcs_id", err)
	}
	b = append(b, `,"r":`...)
	b = append(b, txt[3]...)
	b = append(b, `,"shard_id":`...)
	if b, err = AppendString(b, s.ShardID); err != nil {
		return nil, field("shard_id", err)
	}
	return append(b, '}'), nil
}

func field(name string, err error) error {
	if ve, ok := err.(*ValueError); ok {
		ve.Field = name
	}
	return err
}

// Digest is SHA-256 of the canonical payload (SPEC §2 step 4); it is what gets signed.
func Digest(s Signed) ([32]byte, error) {
	p, err := CanonicalPayload(s)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(p), nil
}

// ComputePCSID returns sha256_hex(merkle_root + "|" + str(epoch) + "|" + shard_id)
// over the UTF-8 bytes (SPEC §3 step 4).
func ComputePCSID(merkleRoot string, epoch int64, shardID string) string {
	h := sha256.Sum256([]byte(merkleRoot + "|" + strconv.FormatInt(epoch, 10) + "|" + shardID))
	return hex.EncodeToString(h[:])
}
