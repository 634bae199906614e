// Command pcs-conformance is the Go SDK's conformance command (issue 3's interface).
//
// It reads JSON lines on stdin, each
//
//	{"pcs": {...}, "hmac_key": "...", "ed25519_seed_b64": "..."}
//
// and writes one JSON line for each:
//
//	{"payload": "<canonical string>", "sha256": "<hex>", "hmac_sig": "...", "ed25519_sig": "..."}
//
// A line that cannot be signed yields {"error": code, "detail": text} and the command
// exits 1 after the last line. A missing key yields null for that signature.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/flk-pcs/flk/sdk/go/pcs"
)

type input struct {
	PCS            json.RawMessage `json:"pcs"`
	HMACKey        *string         `json:"hmac_key"`
	Ed25519SeedB64 *string         `json:"ed25519_seed_b64"`
}

type output struct {
	Payload    string  `json:"payload"`
	SHA256     string  `json:"sha256"`
	HMACSig    *string `json:"hmac_sig"`
	Ed25519Sig *string `json:"ed25519_sig"`
}

type failure struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

func main() {
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

func run(stdin io.Reader, stdout, stderr io.Writer) int {
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 0, 1<<16), 16<<20)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	status, n := 0, 0
	for in.Scan() {
		n++
		line := bytes.TrimSpace(in.Bytes())
		if len(line) == 0 {
			continue
		}
		res, err := one(line)
		if err != nil {
			status = 1
			fmt.Fprintf(stderr, "pcs-conformance: line %d: %v\n", n, err)
			_ = enc.Encode(failure{Error: "invalid_input", Detail: err.Error()})
			continue
		}
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "pcs-conformance: %v\n", err)
			return 1
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(stderr, "pcs-conformance: reading stdin: %v\n", err)
		return 1
	}
	return status
}

func one(line []byte) (*output, error) {
	var in input
	if err := json.Unmarshal(line, &in); err != nil {
		return nil, err
	}
	s, err := pcs.ParseSigned(in.PCS)
	if err != nil {
		return nil, err
	}
	payload, err := pcs.CanonicalPayload(s)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(payload)
	res := &output{Payload: string(payload), SHA256: hex.EncodeToString(d[:])}
	if in.HMACKey != nil {
		sig := pcs.HMACKey{Secret: *in.HMACKey}.SignDigest(d)
		res.HMACSig = &sig
	}
	if in.Ed25519SeedB64 != nil {
		k, err := pcs.Ed25519FromSeedB64(*in.Ed25519SeedB64)
		if err != nil {
			return nil, err
		}
		sig := k.SignDigest(d)
		res.Ed25519Sig = &sig
	}
	return res, nil
}
