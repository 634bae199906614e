package pcs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes is the largest PCS body the gateway takes (SPEC §1, §4: 413 above).
const MaxBodyBytes = 1 << 20

const maxDepth = 32

// MalformedRecordError is a body that breaks a structural rule of SPEC §1 — what the
// gateway answers with 400. Code is a stable machine-readable code.
type MalformedRecordError struct {
	Code   string
	Field  string
	Detail string
}

func (e *MalformedRecordError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("pcs: malformed record: %s: field %q: %s", e.Code, e.Field, e.Detail)
	}
	return fmt.Sprintf("pcs: malformed record: %s: %s", e.Code, e.Detail)
}

func malformed(code, field, format string, a ...any) error {
	return &MalformedRecordError{Code: code, Field: field, Detail: fmt.Sprintf(format, a...)}
}

// decodeStrict parses JSON into map[string]any / []any / string / json.Number / bool /
// nil, refusing what SPEC §1 calls malformed but encoding/json accepts: duplicate keys,
// nesting deeper than 32, invalid UTF-8, lone surrogate escapes, trailing data.
//
// With limit, a non-integer number token must be below 1e15 in magnitude (integer
// tokens are bounded by their fields' own ranges: an epoch may reach 2^53).
func decodeStrict(raw []byte, limit bool) (any, error) {
	if !utf8.Valid(raw) {
		return nil, malformed("invalid_unicode", "", "body is not valid UTF-8")
	}
	if err := checkSurrogates(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec, 0, limit)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("malformed_json", "", "trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int, limit bool) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed("malformed_json", "", "%v", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > maxDepth {
			return nil, malformed("too_deep", "", "nesting deeper than %d", maxDepth)
		}
		if t == '[' {
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1, limit)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, malformed("malformed_json", "", "%v", err)
			}
			return arr, nil
		}
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, malformed("malformed_json", "", "%v", err)
			}
			k := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, malformed("duplicate_key", k, "key appears more than once")
			}
			v, err := decodeValue(dec, depth+1, limit)
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, malformed("malformed_json", "", "%v", err)
		}
		return obj, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, malformed("number_out_of_range", "", "%s does not fit a double", t)
		}
		if limit && !intToken.MatchString(string(t)) && math.Abs(f) >= 1e15 {
			return nil, malformed("number_out_of_range", "", "|%s| must be below 1e15", t)
		}
		return t, nil
	default:
		return t, nil
	}
}

// checkSurrogates finds \uXXXX escapes that are lone UTF-16 surrogates, which
// encoding/json would silently turn into U+FFFD.
func checkSurrogates(raw []byte) error {
	inStr, pendingHigh := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inStr {
			if c == '"' {
				inStr = true
			}
			continue
		}
		isLow := false
		switch c {
		case '"':
			inStr = false
		case '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' && i+5 < len(raw) {
				u, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
				if err == nil {
					switch {
					case u >= 0xD800 && u < 0xDC00:
						if pendingHigh {
							return malformed("invalid_unicode", "", "lone surrogate escape")
						}
						pendingHigh = true
						i += 5
						continue
					case u >= 0xDC00 && u < 0xE000:
						if !pendingHigh {
							return malformed("invalid_unicode", "", "lone surrogate escape")
						}
						isLow = true
					}
				}
				i += 5
			} else {
				i++
			}
		}
		if pendingHigh && !isLow {
			return malformed("invalid_unicode", "", "lone surrogate escape")
		}
		pendingHigh = false
	}
	return nil
}

var (
	hex64     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	rfc3339   = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)
	intToken  = regexp.MustCompile(`^-?(0|[1-9]\d*)$`)
	regimeSet = map[string]bool{RegimeSticky: true, RegimeMixed: true, RegimeNonSticky: true}
)

type fields struct {
	obj map[string]any
	err error
}

func (f *fields) fail(code, name, format string, a ...any) {
	if f.err == nil {
		f.err = malformed(code, name, format, a...)
	}
}

func (f *fields) get(name string) (any, bool) {
	v, ok := f.obj[name]
	if !ok || v == nil {
		f.fail("missing_field", name, "required field is missing")
		return nil, false
	}
	return v, true
}

func (f *fields) str(name string) string {
	v, ok := f.get(name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail("wrong_type", name, "must be a string")
	}
	return s
}

func asInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok || !intToken.MatchString(string(n)) {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

func (f *fields) int(name string) int64 {
	v, ok := f.get(name)
	if !ok {
		return 0
	}
	i, ok := asInt(v)
	if !ok {
		f.fail("wrong_type", name, "must be an integer token")
	}
	return i
}

func asFloat(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(n), 64)
	return x, err == nil
}

func (f *fields) float(name string) float64 {
	v, ok := f.get(name)
	if !ok {
		return 0
	}
	x, ok := asFloat(v)
	if !ok {
		f.fail("wrong_type", name, "must be a number")
	}
	return x
}

// ParseSigned reads only the 8 signed fields from a JSON object, with SPEC §1's rules
// for them (integer tokens accepted for the 4 numbers; epoch must be an integer token).
func ParseSigned(raw []byte) (Signed, error) {
	v, err := decodeStrict(raw, false)
	if err != nil {
		return Signed{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Signed{}, malformed("not_an_object", "", "the body must be a JSON object")
	}
	f := &fields{obj: obj}
	s := Signed{
		PCSID: f.str("pcs_id"), MerkleRoot: f.str("merkle_root"), Epoch: f.int("epoch"),
		ShardID: f.str("shard_id"), DHat: f.float("D_hat"), CohStar: f.float("coh_star"),
		R: f.float("r"), Budget: f.float("budget"),
	}
	return s, f.err
}

// ParseRecord parses a PCS body and checks its structure (SPEC §1). A failure is a
// *MalformedRecordError — what the gateway answers with 400. Values (pcs_id, sanity,
// D̂, …) are not checked here; see Check.
func ParseRecord(raw []byte) (*Record, error) {
	if len(raw) > MaxBodyBytes {
		return nil, malformed("too_large", "", "body is %d bytes, over 1 MiB", len(raw))
	}
	v, err := decodeStrict(raw, true)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("not_an_object", "", "the body must be a JSON object")
	}
	f := &fields{obj: obj}
	r := &Record{
		PCSID: f.str("pcs_id"), Schema: f.str("schema"), Version: f.str("version"),
		ShardID: f.str("shard_id"), Epoch: f.int("epoch"), Attempt: f.int("attempt"),
		SentAt: f.str("sent_at"), Seed: f.int("seed"),
		CohStar: f.float("coh_star"), DHat: f.float("D_hat"), R: f.float("r"), Budget: f.float("budget"),
		Regime: f.str("regime"), MerkleRoot: f.str("merkle_root"),
	}
	// A missing or empty sig is a 401 (missing_signature), not a 400.
	if sv, ok := obj["sig"]; ok && sv != nil {
		if s, ok := sv.(string); ok {
			r.Sig = s
		} else {
			f.fail("wrong_type", "sig", "must be a string")
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	for _, n := range []struct {
		name string
		v    float64
	}{{"coh_star", r.CohStar}, {"D_hat", r.DHat}, {"r", r.R}, {"budget", r.Budget}} {
		if math.Abs(n.v) >= 1e15 {
			f.fail("number_out_of_range", n.name, "|%s| is not below 1e15", FormatFloat(n.v))
		}
	}
	switch {
	case !hex64.MatchString(r.PCSID):
		f.fail("invalid_pcs_id", "pcs_id", "must be 64 lowercase hex characters, got %q", r.PCSID)
	case r.Version != Version:
		f.fail("unsupported_version", "version", "%q is not %q", r.Version, Version)
	case r.ShardID == "":
		f.fail("empty_string", "shard_id", "must not be empty")
	case r.Epoch < 0 || r.Epoch >= MaxEpoch:
		f.fail("epoch_out_of_range", "epoch", "%d is outside [0, 2^53)", r.Epoch)
	case r.Attempt < 1:
		f.fail("attempt_out_of_range", "attempt", "%d is below 1", r.Attempt)
	case !validRFC3339(r.SentAt):
		f.fail("invalid_sent_at", "sent_at", "%q is not an RFC 3339 date-time", r.SentAt)
	case r.Seed <= -MaxEpoch || r.Seed >= MaxEpoch:
		f.fail("seed_out_of_range", "seed", "|%d| is not below 2^53", r.Seed)
	case !regimeSet[r.Regime]:
		f.fail("invalid_regime", "regime", "%q is not one of sticky, mixed, non_sticky", r.Regime)
	case r.MerkleRoot == "":
		f.fail("empty_string", "merkle_root", "must not be empty")
	case r.Sig != "" && !validBase64(r.Sig):
		f.fail("invalid_signature_encoding", "sig", "not padded standard base64")
	}
	if sc, ok := f.get("scales"); ok {
		arr, ok := sc.([]any)
		if !ok {
			f.fail("wrong_type", "scales", "must be an array of integers")
		} else if len(arr) == 0 {
			f.fail("empty_scales", "scales", "must not be empty")
		}
		for _, e := range arr {
			i, ok := asInt(e)
			if !ok {
				f.fail("wrong_type", "scales", "must be a non-empty array of integers")
			}
			r.Scales = append(r.Scales, i)
		}
	}
	if nj, ok := f.get("N_j"); ok {
		m, ok := nj.(map[string]any)
		if !ok {
			f.fail("wrong_type", "N_j", "must be an object of integers")
		}
		r.NJ = make(map[string]int64, len(m))
		for k, e := range m {
			i, ok := asInt(e)
			if !ok {
				f.fail("wrong_type", "N_j", "value of %q must be an integer", k)
			}
			r.NJ[k] = i
		}
	}
	if vs, ok := f.get("v_star"); ok {
		arr, ok := vs.([]any)
		if !ok {
			f.fail("wrong_type", "v_star", "must be an array of numbers")
		}
		r.VStar = []float64{}
		for _, e := range arr {
			x, ok := asFloat(e)
			if !ok {
				f.fail("wrong_type", "v_star", "must be an array of numbers")
			}
			r.VStar = append(r.VStar, x)
		}
	}
	if ftv, present := obj["ft"]; present && ftv != nil {
		r.FT = parseFT(f, ftv)
	}
	if f.err != nil {
		return nil, f.err
	}
	return r, nil
}

func parseFT(f *fields, v any) *FT {
	m, ok := v.(map[string]any)
	if !ok {
		f.fail("wrong_type", "ft", "must be an object")
		return nil
	}
	ft := &FT{}
	if x, ok := m["outbox_seq"]; ok {
		i, ok := asInt(x)
		if !ok {
			f.fail("wrong_type", "ft.outbox_seq", "must be an integer")
		}
		ft.OutboxSeq = &i
	}
	if x, ok := m["degraded"]; ok {
		b, ok := x.(bool)
		if !ok {
			f.fail("wrong_type", "ft.degraded", "must be a boolean")
		}
		ft.Degraded = &b
	}
	if x, ok := m["fallbacks"]; ok {
		arr, ok := x.([]any)
		if !ok {
			f.fail("wrong_type", "ft.fallbacks", "must be an array of strings")
		}
		ft.Fallbacks = []string{}
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				f.fail("wrong_type", "ft.fallbacks", "must be an array of strings")
			}
			ft.Fallbacks = append(ft.Fallbacks, s)
		}
	}
	if x, ok := m["clock_skew_ms"]; ok {
		i, ok := asInt(x)
		if !ok {
			f.fail("wrong_type", "ft.clock_skew_ms", "must be an integer")
		}
		ft.ClockSkewMs = &i
	}
	return ft
}

func validRFC3339(s string) bool {
	m := rfc3339.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	mo, d, h, mi, sec := n(2), n(3), n(4), n(5), n(6)
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(n(1), mo) || h > 23 || mi > 59 || sec > 60 {
		return false
	}
	if off := m[8]; len(off) == 6 {
		oh, _ := strconv.Atoi(off[1:3])
		om, _ := strconv.Atoi(off[4:6])
		return oh <= 23 && om <= 59
	}
	return true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func validBase64(s string) bool {
	if s == "" || len(s)%4 != 0 || strings.ContainsAny(s, "-_\n\r ") {
		return false
	}
	_, err := b64strict.DecodeString(s)
	return err == nil
}
