package pcs

import (
	"encoding/base64"
	"sort"
	"strconv"
	"time"
)

// Schema and Version are the values a record carries today (SPEC §1, §3).
const (
	Schema  = "fractal-lba-kakeya"
	Version = "0.1"
)

// The three regimes (SPEC §1, §3 step 5).
const (
	RegimeSticky    = "sticky"
	RegimeMixed     = "mixed"
	RegimeNonSticky = "non_sticky"
)

var b64strict = base64.StdEncoding.Strict()

// Record is a Proof-of-Computation Summary (SPEC §1). Only the fields of Signed are
// covered by Sig; scales, N_j, regime and the rest are not.
type Record struct {
	PCSID      string
	Schema     string
	Version    string
	ShardID    string
	Epoch      int64
	Attempt    int64
	SentAt     string
	Seed       int64
	Scales     []int64
	NJ         map[string]int64
	CohStar    float64
	VStar      []float64
	DHat       float64
	R          float64
	Regime     string
	Budget     float64
	MerkleRoot string
	Sig        string
	FT         *FT
}

// FT is the optional fault-tolerance block of a record.
type FT struct {
	OutboxSeq   *int64
	Degraded    *bool
	Fallbacks   []string
	ClockSkewMs *int64
}

// Signed returns the 8 signed fields of r.
func (r *Record) Signed() Signed {
	return Signed{
		PCSID: r.PCSID, MerkleRoot: r.MerkleRoot, Epoch: r.Epoch, ShardID: r.ShardID,
		DHat: r.DHat, CohStar: r.CohStar, R: r.R, Budget: r.Budget,
	}
}

// Sign sets r.Sig to the signature of r's signed fields.
func (r *Record) Sign(k Signer) error {
	sig, err := Sign(r.Signed(), k)
	if err != nil {
		return err
	}
	r.Sig = sig
	return nil
}

// MarshalJSON writes the record with every float printed as Python's repr (so -0.0
// stays a float and the server parses the very doubles that were signed), ASCII-only
// strings, N_j keys sorted. Non-finite numbers and invalid UTF-8 are a *ValueError.
func (r *Record) MarshalJSON() ([]byte, error) {
	w := &jsonWriter{b: make([]byte, 0, 512)}
	w.b = append(w.b, '{')
	w.str("pcs_id", r.PCSID)
	w.str("schema", r.Schema)
	w.str("version", r.Version)
	w.str("shard_id", r.ShardID)
	w.int("epoch", r.Epoch)
	w.int("attempt", r.Attempt)
	w.str("sent_at", r.SentAt)
	w.int("seed", r.Seed)
	w.key("scales")
	w.b = append(w.b, '[')
	for i, s := range r.Scales {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = strconv.AppendInt(w.b, s, 10)
	}
	w.b = append(w.b, ']')
	w.key("N_j")
	keys := make([]string, 0, len(r.NJ))
	for k := range r.NJ {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.b = append(w.b, '{')
	for i, k := range keys {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.rawStr("N_j", k)
		w.b = append(w.b, ':')
		w.b = strconv.AppendInt(w.b, r.NJ[k], 10)
	}
	w.b = append(w.b, '}')
	w.float("coh_star", r.CohStar)
	w.key("v_star")
	w.b = append(w.b, '[')
	for i, x := range r.VStar {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.rawFloat("v_star", x)
	}
	w.b = append(w.b, ']')
	w.float("D_hat", r.DHat)
	w.float("r", r.R)
	w.str("regime", r.Regime)
	w.float("budget", r.Budget)
	w.str("merkle_root", r.MerkleRoot)
	w.str("sig", r.Sig)
	if ft := r.FT; ft != nil {
		w.key("ft")
		w.b = append(w.b, '{')
		w.first = true
		if ft.OutboxSeq != nil {
			w.int("outbox_seq", *ft.OutboxSeq)
		}
		if ft.Degraded != nil {
			w.key("degraded")
			w.b = strconv.AppendBool(w.b, *ft.Degraded)
		}
		if ft.Fallbacks != nil {
			w.key("fallbacks")
			w.b = append(w.b, '[')
			for i, s := range ft.Fallbacks {
				if i > 0 {
					w.b = append(w.b, ',')
				}
				w.rawStr("ft.fallbacks", s)
			}
			w.b = append(w.b, ']')
		}
		if ft.ClockSkewMs != nil {
			w.int("clock_skew_ms", *ft.ClockSkewMs)
		}
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, '}')
	return w.b, w.err
}

// UnmarshalJSON is ParseRecord: the structural rules of SPEC §1 apply.
func (r *Record) UnmarshalJSON(b []byte) error {
	p, err := ParseRecord(b)
	if err != nil {
		return err
	}
	*r = *p
	return nil
}

type jsonWriter struct {
	b     []byte
	first bool
	err   error
}

func (w *jsonWriter) key(k string) {
	if len(w.b) > 0 && w.b[len(w.b)-1] != '{' {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonWriter) rawStr(name, s string) {
	var err error
	if w.b, err = AppendString(w.b, s); err != nil && w.err == nil {
		w.err = field(name, err)
	}
}

func (w *jsonWriter) rawFloat(name string, x float64) {
	if _, err := Round9(x); err != nil && w.err == nil {
		w.err = field(name, err)
		x = 0
	}
	w.b = append(w.b, FormatFloat(x)...)
}

func (w *jsonWriter) str(k, s string)       { w.key(k); w.rawStr(k, s) }
func (w *jsonWriter) int(k string, i int64) { w.key(k); w.b = strconv.AppendInt(w.b, i, 10) }
func (w *jsonWriter) float(k string, x float64) {
	w.key(k)
	w.rawFloat(k, x)
}

// Input is what an agent measured; Build derives the rest of a record from it.
type Input struct {
	ShardID    string
	Epoch      int64
	MerkleRoot string // 64 lowercase hex
	Scales     []int64
	NJ         map[string]int64 // N_j[str(scale)] for every scale
	CohStar    float64
	VStar      []float64
	R          float64
	Seed       int64
	Attempt    int64     // 0 means 1
	SentAt     time.Time // zero means now
	FT         *FT
}

// Build derives a complete record from in: pcs_id from (merkle_root, epoch, shard_id),
// D_hat by the same Theil–Sen estimate the server recomputes, the regime and the budget
// under policy p, every number rounded to 9 places. The record is unsigned; call Sign.
func Build(in Input, p Policy) (*Record, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if in.Epoch < 0 || in.Epoch >= MaxEpoch {
		return nil, &ValueError{Field: "epoch", Value: strconv.FormatInt(in.Epoch, 10), Reason: "must be in [0, 2^53)"}
	}
	if in.ShardID == "" {
		return nil, &ValueError{Field: "shard_id", Value: `""`, Reason: "must not be empty"}
	}
	if !hex64.MatchString(in.MerkleRoot) {
		return nil, &ValueError{Field: "merkle_root", Value: strconv.Quote(in.MerkleRoot), Reason: "must be 64 lowercase hex"}
	}
	dhat, ok := TheilSenDHat(in.Scales, in.NJ)
	if !ok {
		return nil, &ValueError{Field: "scales", Value: strconv.Itoa(len(in.Scales)) + " scales", Reason: "need at least 2 distinct scales, each with N_j > 0"}
	}
	coh, err := Round9(in.CohStar)
	if err != nil {
		return nil, field("coh_star", err)
	}
	rr, err := Round9(in.R)
	if err != nil {
		return nil, field("r", err)
	}
	attempt := in.Attempt
	if attempt == 0 {
		attempt = 1
	}
	sent := in.SentAt
	if sent.IsZero() {
		sent = time.Now()
	}
	vstar := append([]float64{}, in.VStar...)
	if in.VStar == nil {
		vstar = []float64{}
	}
	return &Record{
		PCSID:      ComputePCSID(in.MerkleRoot, in.Epoch, in.ShardID),
		Schema:     Schema,
		Version:    Version,
		ShardID:    in.ShardID,
		Epoch:      in.Epoch,
		Attempt:    attempt,
		SentAt:     sent.UTC().Format(time.RFC3339Nano),
		Seed:       in.Seed,
		Scales:     append([]int64{}, in.Scales...),
		NJ:         in.NJ,
		CohStar:    coh,
		VStar:      vstar,
		DHat:       dhat,
		R:          rr,
		Regime:     RegimeFor(dhat, coh, p),
		Budget:     BudgetFor(dhat, coh, rr, p),
		MerkleRoot: in.MerkleRoot,
		FT:         in.FT,
	}, nil
}
