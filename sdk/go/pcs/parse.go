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
func decodeStrict(raw []byte) (any, error) {
	if !utf8.Valid(raw) {
		return nil, malformed("invalid_unicode", "", "body is not valid UTF-8")
	}
	if err := checkSurrogates(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("malformed_json", "", "trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
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
				v, err := decodeValue(dec, depth+1)
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
			v, err := decodeValue(dec, depth+1)
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
			return nil, malformed("number_out_of_range", "", "%s does not fit a double", truncate(string(t), 40))
		}
		return t, nil
	default:
		return t, nil
	}
}

// checkSurrogates finds \uXXXX escapes that are lone UTF-16 surrogates, which
// encoding/json would silently turn into U+FFFD, and NaN/Infinity tokens.
func checkSurrogates(raw []byte) error {
	inStr, pendingHigh := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inStr {
			switch {
			case c == '"':
				inStr = true
			case bytes.HasPrefix(raw[i:], []byte("NaN")) || bytes.HasPrefix(raw[i:], []byte("Infinity")):
				// Python's json reads these tokens; SPEC §1 calls them malformed.
				return malformed("non_finite_number", "", "NaN and Infinity are not numbers")
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
	rfc3339   = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)
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
	if !ok {
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
	v, err := decodeStrict(raw)
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

// ParseRecord parses a PCS body and checks its structure (SPEC §1) in the order of the
// Python core (issue 3), so that the first broken rule names the same stable code: the
// document-wide rules, the number bound, then the fields in the SPEC table's order. A
// failure is a *MalformedRecordError — what the gateway answers with 400. A missing or
// empty sig is not malformed (it is a 401). Values (pcs_id, sanity, D̂, …) are checked
// by Evaluate, not here.
func ParseRecord(raw []byte) (*Record, error) {
	if len(raw) > MaxBodyBytes {
		return nil, malformed("too_large", "", "body is %d bytes, over 1 MiB", len(raw))
	}
	v, err := decodeStrict(raw)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("not_an_object", "", "the body must be a JSON object")
	}
	// SPEC §1 bounds |number| < 1e15 everywhere except epoch and seed, whose own ranges
	// reach 2^53.
	for k, x := range obj {
		if k == "epoch" || k == "seed" {
			continue
		}
		if n, bad := outOfRange(x); bad {
			return nil, malformed("number_out_of_range", k, "|%s| must be below 1e15", n)
		}
	}
	f := &fields{obj: obj}
	r := &Record{}
	if r.PCSID = f.str("pcs_id"); f.err == nil && !hex64.MatchString(r.PCSID) {
		f.fail("invalid_pcs_id", "pcs_id", "must be 64 lowercase hex characters")
	}
	r.Schema = f.str("schema")
	if r.Version = f.str("version"); f.err == nil && r.Version != Version {
		f.fail("unsupported_version", "version", "%q is not %q", truncate(r.Version, 20), Version)
	}
	if r.ShardID = f.str("shard_id"); f.err == nil && r.ShardID == "" {
		f.fail("empty_string", "shard_id", "must not be empty")
	}
	if r.Epoch = f.int("epoch"); f.err == nil && (r.Epoch < 0 || r.Epoch >= MaxEpoch) {
		f.fail("epoch_out_of_range", "epoch", "%d is outside [0, 2^53)", r.Epoch)
	}
	if r.Attempt = f.int("attempt"); f.err == nil && r.Attempt < 1 {
		f.fail("attempt_out_of_range", "attempt", "%d is below 1", r.Attempt)
	}
	if r.SentAt = f.str("sent_at"); f.err == nil && !validRFC3339(r.SentAt) {
		f.fail("invalid_sent_at", "sent_at", "%q is not an RFC 3339 date-time", truncate(r.SentAt, 40))
	}
	if r.Seed = f.int("seed"); f.err == nil && (r.Seed <= -MaxEpoch || r.Seed >= MaxEpoch) {
		f.fail("seed_out_of_range", "seed", "|%d| is not below 2^53", r.Seed)
	}
	if sc, ok := f.get("scales"); ok && f.err == nil {
		arr, ok := sc.([]any)
		switch {
		case !ok:
			f.fail("wrong_type", "scales", "must be an array of integers")
		case len(arr) == 0:
			f.fail("empty_scales", "scales", "must not be empty")
		}
		r.Scales = make([]int64, 0, len(arr))
		for _, e := range arr {
			i, ok := asInt(e)
			if !ok {
				f.fail("wrong_type", "scales", "must be an array of integers")
			}
			r.Scales = append(r.Scales, i)
		}
	}
	if nj, ok := f.get("N_j"); ok && f.err == nil {
		m, ok := nj.(map[string]any)
		if !ok {
			f.fail("wrong_type", "N_j", "must be an object of integers")
		}
		r.NJ = make(map[string]int64, len(m))
		for k, e := range m {
			i, ok := asInt(e)
			if !ok {
				f.fail("wrong_type", "N_j", "value of %q must be an integer", truncate(k, 20))
			}
			r.NJ[k] = i
		}
	}
	r.CohStar = f.float("coh_star")
	r.DHat = f.float("D_hat")
	r.R = f.float("r")
	r.Budget = f.float("budget")
	if vs, ok := f.get("v_star"); ok && f.err == nil {
		arr, ok := vs.([]any)
		if !ok {
			f.fail("wrong_type", "v_star", "must be an array of numbers")
		}
		r.VStar = make([]float64, 0, len(arr))
		for _, e := range arr {
			x, ok := asFloat(e)
			if !ok {
				f.fail("wrong_type", "v_star", "must be an array of numbers")
			}
			r.VStar = append(r.VStar, x)
		}
	}
	if r.Regime = f.str("regime"); f.err == nil && !regimeSet[r.Regime] {
		f.fail("invalid_regime", "regime", "%q is not sticky, mixed or non_sticky", truncate(r.Regime, 20))
	}
	if r.MerkleRoot = f.str("merkle_root"); f.err == nil && r.MerkleRoot == "" {
		f.fail("empty_string", "merkle_root", "must not be empty")
	}
	if sv, present := obj["sig"]; present && f.err == nil {
		s, ok := sv.(string)
		switch {
		case !ok:
			f.fail("wrong_type", "sig", "must be a string")
		case s != "" && !validBase64(s):
			f.fail("invalid_signature_encoding", "sig", "must be base64 (standard alphabet, padded)")
		}
		r.Sig = s
	}
	if ftv := obj["ft"]; ftv != nil && f.err == nil {
		r.FT = parseFT(f, ftv)
	}
	if f.err != nil {
		return nil, f.err
	}
	return r, nil
}

// outOfRange finds the first number with |x| ≥ 1e15 in v and everything nested in it.
func outOfRange(v any) (json.Number, bool) {
	switch t := v.(type) {
	case json.Number:
		x, err := strconv.ParseFloat(string(t), 64)
		return t, err != nil || !(math.Abs(x) < 1e15)
	case []any:
		for _, e := range t {
			if n, bad := outOfRange(e); bad {
				return n, true
			}
		}
	case map[string]any:
		for _, e := range t {
			if n, bad := outOfRange(e); bad {
				return n, true
			}
		}
	}
	return "", false
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
