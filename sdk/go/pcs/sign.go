package pcs

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Algorithm names used in key sets and by Signer.Alg.
const (
	AlgHMAC    = "hmac"
	AlgEd25519 = "ed25519"
)

// A Signer signs the 32-byte digest of a canonical payload (SPEC §2 step 5) and
// returns the signature in padded standard base64.
type Signer interface {
	Alg() string
	SignDigest(digest [32]byte) string
}

// A Verifier checks a base64 signature over a digest in constant time.
type Verifier interface {
	Alg() string
	VerifyDigest(digest [32]byte, sig string) bool
}

// HMACKey is a tenant's shared secret. The HMAC key is the UTF-8 bytes of the secret
// and the message is the digest, not the payload ("pre-hash HMAC"): 44-char signatures.
type HMACKey struct{ Secret string }

func (HMACKey) Alg() string { return AlgHMAC }

func (k HMACKey) SignDigest(d [32]byte) string {
	m := hmac.New(sha256.New, []byte(k.Secret))
	m.Write(d[:])
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (k HMACKey) VerifyDigest(d [32]byte, sig string) bool {
	got, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(k.Secret))
	m.Write(d[:])
	return hmac.Equal(got, m.Sum(nil))
}

// Ed25519Key is a private key; pure Ed25519 signs the digest: 88-char signatures.
type Ed25519Key struct{ priv ed25519.PrivateKey }

// Ed25519FromSeed builds a key from its 32-byte RFC 8032 seed.
func Ed25519FromSeed(seed []byte) (Ed25519Key, error) {
	if len(seed) != ed25519.SeedSize {
		return Ed25519Key{}, &ValueError{Field: "ed25519_seed", Value: fmt.Sprintf("%d bytes", len(seed)), Reason: "must be 32 bytes"}
	}
	return Ed25519Key{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Ed25519FromSeedB64 builds a key from its seed in padded standard base64.
func Ed25519FromSeedB64(seed string) (Ed25519Key, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(seed)
	if err != nil {
		return Ed25519Key{}, &ValueError{Field: "ed25519_seed", Value: seed, Reason: "not padded standard base64"}
	}
	return Ed25519FromSeed(b)
}

func (Ed25519Key) Alg() string { return AlgEd25519 }

func (k Ed25519Key) SignDigest(d [32]byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, d[:]))
}

// Public returns the verifying half of the key.
func (k Ed25519Key) Public() Ed25519PublicKey {
	return Ed25519PublicKey(k.priv.Public().(ed25519.PublicKey))
}

// Ed25519PublicKey is 32 raw bytes; tenants files carry it in base64.
type Ed25519PublicKey ed25519.PublicKey

// ParseEd25519PublicKey decodes a 32-byte public key from padded standard base64.
func ParseEd25519PublicKey(b64 string) (Ed25519PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, &ValueError{Field: "ed25519_public_key", Value: b64, Reason: "must be 32 bytes in padded standard base64"}
	}
	return Ed25519PublicKey(b), nil
}

// String returns the key in padded standard base64.
func (p Ed25519PublicKey) String() string { return base64.StdEncoding.EncodeToString(p) }

func (Ed25519PublicKey) Alg() string { return AlgEd25519 }

func (p Ed25519PublicKey) VerifyDigest(d [32]byte, sig string) bool {
	got, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(got) != ed25519.SignatureSize || len(p) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(p), d[:], got)
}

// Sign returns the signature of the 8 signed fields.
func Sign(s Signed, k Signer) (string, error) {
	d, err := Digest(s)
	if err != nil {
		return "", err
	}
	return k.SignDigest(d), nil
}

// Verify reports whether sig is a valid signature of s under v.
func Verify(s Signed, v Verifier, sig string) bool {
	d, err := Digest(s)
	if err != nil {
		return false
	}
	return v.VerifyDigest(d, sig)
}
