package pcs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/flk-pcs/flk/sdk/go/pcs"
)

var example = pcs.Signed{
	PCSID:      "5e53855568fe1e68e4b47623dc56e0e5004546d963e9231b8f8ab186c353487e",
	MerkleRoot: strings.Repeat("a", 64),
	Epoch:      7,
	ShardID:    "shard-7",
	DHat:       1.2345678905,
	CohStar:    0.7000000005,
	R:          0.5,
	Budget:     1.5e-09,
}

func ExampleCanonicalPayload() {
	p, err := pcs.CanonicalPayload(example)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(p))
	// Output:
	// {"D_hat":1.234567891,"budget":2e-09,"coh_star":0.700000001,"epoch":7,"merkle_root":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","pcs_id":"5e53855568fe1e68e4b47623dc56e0e5004546d963e9231b8f8ab186c353487e","r":0.5,"shard_id":"shard-7"}
}

func ExampleCanonicalFloat() {
	for _, x := range []float64{1, 5e-05, 2.675, 0.30000000000000004, -4e-10, 1e16} {
		s, _ := pcs.CanonicalFloat(x)
		fmt.Println(s)
	}
	// Output:
	// 1.0
	// 5e-05
	// 2.675
	// 0.3
	// -0.0
	// 1e+16
}

func ExampleSign() {
	// The secret of the reference vector "rounding-half-up".
	sig, _ := pcs.Sign(example, pcs.HMACKey{Secret: "key-2-secret"})
	fmt.Println(sig)
	key, _ := pcs.Ed25519FromSeedB64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	sig, _ = pcs.Sign(example, key)
	fmt.Println(len(sig), pcs.Verify(example, key.Public(), sig))
	// Output:
	// TXTWX+KQLwRsFNea6e/+kOkoClA9KwdteNImJ1lZhjo=
	// 88 true
}

func ExampleBuild() {
	rec, err := pcs.Build(pcs.Input{
		ShardID:    "shard-a",
		Epoch:      7,
		MerkleRoot: strings.Repeat("5f", 32),
		Scales:     []int64{2, 4, 8, 16},
		NJ:         map[string]int64{"2": 4, "4": 16, "8": 64, "16": 256},
		CohStar:    0.5,
		R:          0.5,
		SentAt:     time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC),
	}, pcs.DefaultPolicy())
	if err != nil {
		panic(err)
	}
	if err := rec.Sign(pcs.HMACKey{Secret: "acme-secret"}); err != nil {
		panic(err)
	}
	fmt.Println(rec.PCSID)
	fmt.Println(rec.DHat, rec.Regime, rec.Budget)
	fmt.Println(pcs.Check(rec, pcs.DefaultPolicy()).Status)
	// Output:
	// fe1fd0ba0a443114d1d36371bbb07401c38f7a2ef182d0e79b5525548623c045
	// 2 mixed 0.35
	// accepted
}

func ExampleClient_Submit() {
	// A stand-in for a regional gateway.
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/pcs/submit" {
			io.WriteString(w, `{"request_id":"`+r.Header.Get("X-Request-Id")+`","status":"accepted","pcs_id":"fe1f…","tenant":"`+
				r.Header.Get("X-Tenant-Id")+`","accepted":true,"escalated":false,"dedup_hit":false,"policy_version":"p1","region":"eu"}`)
		}
	}))
	defer gw.Close()

	client, _ := pcs.NewClient([]string{gw.URL, "https://us.pcs.example.invalid"},
		pcs.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		pcs.WithTenant("acme"), pcs.WithReadToken("acme-read-token"))
	rec, _ := pcs.Build(pcs.Input{
		ShardID: "shard-a", Epoch: 7, MerkleRoot: strings.Repeat("5f", 32),
		Scales: []int64{2, 4, 8, 16}, NJ: map[string]int64{"2": 4, "4": 16, "8": 64, "16": 256},
		CohStar: 0.5, R: 0.5,
	}, pcs.DefaultPolicy())
	_ = rec.Sign(pcs.HMACKey{Secret: "acme-secret"})

	out, err := client.Submit(context.Background(), rec, pcs.WithRequestID("req-1"))
	var unauthorized *pcs.UnauthorizedError
	switch {
	case errors.As(err, &unauthorized):
		fmt.Println("wrong key:", unauthorized.Code)
	case err != nil:
		fmt.Println("failed:", err)
	case out.Pending():
		out, _ = client.Wait(context.Background(), out)
	}
	fmt.Println(out.HTTPStatus, out.Status, out.Tenant, out.RequestID, out.Region)
	// Output:
	// 200 accepted acme req-1 eu
}
