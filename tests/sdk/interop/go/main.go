// Command interop drives the Go SDK against a running gateway (tests/sdk/test_interop.py).
//
// It reads one JSON config on stdin (see tests/sdk/test_interop.py) and, using only the public
// API of package pcs, builds and signs a fresh record, submits it, submits the same body again
// (a new request id), submits another fresh record with Prefer: respond-async and polls it
// (GET /v1/requests/{id}), submits a record signed with a wrong key and asks what became of it
// (a typed rejection), reads the stored outcome, and prints one JSON object of results on stdout. A step that fails records its error and the
// program goes on; the exit status is non-zero only when the config itself is unusable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/flk-pcs/flk/sdk/go/pcs"
)

type config struct {
	Endpoints    []string `json:"endpoints"`
	Tenant       string   `json:"tenant"`
	Alg          string   `json:"alg"`
	Secret       string   `json:"secret"`
	Seed         string   `json:"seed"`
	WrongSecret  string   `json:"wrong_secret"`
	WrongSeed    string   `json:"wrong_seed"`
	ReadToken    string   `json:"read_token"`
	MerkleRoot   string   `json:"merkle_root"`
	ShardID      string   `json:"shard_id"`
	Epoch        int64    `json:"epoch"`
	WaitTimeoutS float64  `json:"wait_timeout_s"`
	Steps        []string `json:"steps"`
}

type result map[string]any

func signer(alg, secret, seed string) (pcs.Signer, error) {
	switch alg {
	case "hmac":
		return pcs.HMACKey{Secret: secret}, nil
	case "ed25519":
		return pcs.Ed25519FromSeedB64(seed)
	}
	return nil, fmt.Errorf("unknown alg %q", alg)
}

func build(cfg config, shard string, key pcs.Signer) (*pcs.Record, error) {
	rec, err := pcs.Build(pcs.Input{
		ShardID: shard, Epoch: cfg.Epoch, MerkleRoot: cfg.MerkleRoot,
		Scales: []int64{2, 4, 8, 16}, NJ: map[string]int64{"2": 4, "4": 16, "8": 64, "16": 256},
		CohStar: 0.5, R: 0.5,
	}, pcs.DefaultPolicy())
	if err != nil {
		return nil, err
	}
	return rec, rec.Sign(key)
}

func outcomeResult(first, final *pcs.Outcome) result {
	r := result{
		"ok": true, "status": string(final.Status), "http_status": final.HTTPStatus,
		"accepted": final.Accepted, "escalated": final.Escalated, "dedup_hit": final.DedupHit,
		"conflict": final.Conflict, "request_id": final.RequestID, "pcs_id": final.PCSID,
		"tenant": final.Tenant, "region": final.Region, "endpoint": final.Endpoint,
		"reason": final.Reason, "regime": final.Regime, "policy_version": string(final.PolicyVersion),
	}
	if first != nil {
		r["first_status"] = string(first.Status)
		r["first_http_status"] = first.HTTPStatus
		r["first_request_id"] = first.RequestID
		r["first_endpoint"] = first.Endpoint
	}
	return r
}

func errorResult(err error) result {
	r := result{"ok": false, "error": err.Error(), "error_type": fmt.Sprintf("%T", err)}
	var f pcs.APIFailure
	if errors.As(err, &f) {
		d := f.Details()
		r["http_status"], r["code"], r["detail"], r["request_id"] = d.StatusCode, d.Code, d.Detail, d.RequestID
	}
	return r
}

// submit is Submit followed, when the answer is pending, by Wait (GET /v1/requests/{id}).
func submit(ctx context.Context, c *pcs.Client, rec *pcs.Record, opts ...pcs.SubmitOption) result {
	first, err := c.Submit(ctx, rec, opts...)
	if err != nil {
		return errorResult(err)
	}
	final, err := c.Wait(ctx, first)
	if err != nil {
		r := errorResult(err)
		r["first_status"], r["first_request_id"] = string(first.Status), first.RequestID
		return r
	}
	return outcomeResult(first, final)
}

func main() {
	var cfg config
	if err := json.NewDecoder(os.Stdin).Decode(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "interop: bad config:", err)
		os.Exit(2)
	}
	if cfg.WaitTimeoutS <= 0 {
		cfg.WaitTimeoutS = 120
	}
	if len(cfg.Steps) == 0 {
		cfg.Steps = []string{"submit", "duplicate", "async", "wrong_key", "outcome"}
	}
	out := result{"sdk": "go"}
	fail := func(err error) {
		out["fatal"] = err.Error()
		_ = json.NewEncoder(os.Stdout).Encode(out)
		os.Exit(3)
	}
	key, err := signer(cfg.Alg, cfg.Secret, cfg.Seed)
	if err != nil {
		fail(err)
	}
	client, err := pcs.NewClient(cfg.Endpoints,
		pcs.WithHTTPClient(&http.Client{Timeout: 15 * time.Second}),
		pcs.WithTenant(cfg.Tenant), pcs.WithReadToken(cfg.ReadToken))
	if err != nil {
		fail(err)
	}
	rec, err := build(cfg, cfg.ShardID, key)
	if err != nil {
		fail(err)
	}
	out["pcs_id"] = rec.PCSID
	deadline := time.Duration(cfg.WaitTimeoutS * float64(time.Second))

	for _, step := range cfg.Steps {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		switch step {
		case "submit", "duplicate": // the same record, each Submit with a fresh request id
			out[step] = submit(ctx, client, rec)
		case "async": // another fresh record with Prefer: respond-async: 202 pending, then Wait
			rec2, err := build(cfg, cfg.ShardID+"-async", key)
			if err != nil {
				fail(err)
			}
			r := submit(ctx, client, rec2, pcs.RespondAsync())
			r["submitted_pcs_id"] = rec2.PCSID
			out[step] = r
		case "wrong_key":
			wrong, err := signer(cfg.Alg, cfg.WrongSecret, cfg.WrongSeed)
			if err != nil {
				fail(err)
			}
			bad, err := build(cfg, cfg.ShardID+"-wrong-key", wrong)
			if err != nil {
				fail(err)
			}
			o, err := client.Submit(ctx, bad)
			var unauthorized *pcs.UnauthorizedError
			if err == nil {
				out[step] = result{"ok": false, "error": "no error", "status": string(o.Status), "http_status": o.HTTPStatus}
				break
			}
			r := errorResult(err)
			r["typed_unauthorized"] = errors.As(err, &unauthorized)
			out[step] = r
			// What became of that request (GET /v1/requests/{id}): a typed rejection.
			var f pcs.APIFailure
			if errors.As(err, &f) && f.Details().RequestID != "" {
				rid := f.Details().RequestID
				var rr result
				for tries := 1; ; tries++ {
					o, err := client.GetRequest(ctx, rid)
					var nf *pcs.NotFoundError
					if err != nil && errors.As(err, &nf) && ctx.Err() == nil {
						time.Sleep(250 * time.Millisecond)
						continue
					}
					if err == nil {
						rr = result{"ok": true, "status": string(o.Status), "tries": tries}
						break
					}
					var rejected *pcs.RejectedError
					rr = errorResult(err)
					rr["typed_rejected"] = errors.As(err, &rejected)
					rr["typed_unauthorized"] = errors.As(err, &unauthorized)
					rr["polled_request_id"], rr["tries"] = rid, tries
					break
				}
				out["rejected_request"] = rr
			}
		case "outcome": // GET /v1/pcs/{pcs_id}; the outcome store may lag the answer
			var r result
			tries := 0
			for {
				tries++
				o, err := client.GetOutcome(ctx, rec.PCSID)
				var nf *pcs.NotFoundError
				if err == nil {
					r = outcomeResult(nil, o)
					break
				}
				if !errors.As(err, &nf) || ctx.Err() != nil {
					r = errorResult(err)
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(250 * time.Millisecond):
				}
			}
			r["tries"] = tries
			out[step] = r
		default:
			cancel()
			fail(fmt.Errorf("unknown step %q", step))
		}
		cancel()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
