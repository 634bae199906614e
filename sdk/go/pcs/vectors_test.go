package pcs

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The one language-neutral vector file, loaded from the repository (never a copy):
// sdk/vectors/pcs-vectors.json, located relative to this test file.
func vectorFile(t *testing.T) string {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(here), "..", "..", "vectors", "pcs-vectors.json")
}

type signingVector struct {
	Name           string          `json:"name"`
	PCS            json.RawMessage `json:"pcs"`
	Payload        string          `json:"payload"`
	SHA256         string          `json:"sha256"`
	HMACKey        string          `json:"hmac_key"`
	HMACSig        string          `json:"hmac_sig"`
	Ed25519SeedB64 string          `json:"ed25519_seed_b64"`
	Ed25519PubB64  string          `json:"ed25519_pub_b64"`
	Ed25519Sig     string          `json:"ed25519_sig"`
}

type pcsIDVector struct {
	MerkleRoot string `json:"merkle_root"`
	Epoch      int64  `json:"epoch"`
	ShardID    string `json:"shard_id"`
	PCSID      string `json:"pcs_id"`
}

type vectorDoc struct {
	Contract     string               `json:"contract"`
	Format       int                  `json:"format"`
	Signing      []signingVector      `json:"signing"`
	PCSID        []pcsIDVector        `json:"pcs_id"`
	Verification []verificationVector `json:"verification"`
}

func loadVectors(t *testing.T) *vectorDoc {
	t.Helper()
	raw, err := os.ReadFile(vectorFile(t))
	if err != nil {
		t.Fatalf("the shared vector file is required: %v", err)
	}
	var doc vectorDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parsing %s: %v", vectorFile(t), err)
	}
	if doc.Format != 1 {
		t.Fatalf("vector file format %d, this test reads format 1", doc.Format)
	}
	return &doc
}

type parseVector struct {
	Name    string          `json:"name"`
	Body    *string         `json:"body"`
	BodyB64 *string         `json:"body_b64"`
	Expect  json.RawMessage `json:"expect"`
}

func TestParseVectors(t *testing.T) {
	raw, err := os.ReadFile(vectorFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Parse []parseVector `json:"parse"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Parse) == 0 {
		t.Fatal("no parse vectors")
	}
	failures := 0
	for _, v := range doc.Parse {
		var body []byte
		switch {
		case v.Body != nil:
			body = []byte(*v.Body)
		case v.BodyB64 != nil:
			body, err = base64.StdEncoding.DecodeString(*v.BodyB64)
			if err != nil {
				t.Fatalf("%s: body_b64: %v", v.Name, err)
			}
		default:
			t.Fatalf("%s: no body", v.Name)
		}
		want := "ok"
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(v.Expect, &e) == nil && e.Error != "" {
			want = e.Error
		}
		got := "ok"
		if _, err := ParseRecord(body); err != nil {
			var me *MalformedRecordError
			if !errors.As(err, &me) {
				t.Errorf("%s: untyped error %v", v.Name, err)
				failures++
				continue
			}
			got = me.Code
		}
		if got != want {
			failures++
			t.Errorf("%s: ParseRecord gives %s, want %s", v.Name, got, want)
		}
	}
	if failures > 0 {
		t.Errorf("%d out of %d parse vectors failed", failures, len(doc.Parse))
	}
}
