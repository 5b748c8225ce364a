package evidence

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// Signer signs records: a key drillbot is given (a PEM private key, as a
// Kubernetes Secret mounts it), through sigstore's signature and DSSE
// packages.
type Signer struct {
	s     signature.Signer
	keyID string
}

// LoadSigner reads a PEM private key (ECDSA, Ed25519 or RSA; unencrypted,
// or sigstore-encrypted with password).
func LoadSigner(path string, password []byte) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	pf := cryptoutils.SkipPassword
	if len(password) > 0 {
		pf = cryptoutils.StaticPasswordFunc(password)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(data, pf)
	if err != nil {
		return nil, fmt.Errorf("evidence key %s: %w", path, err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("evidence key %s: %w", path, err)
	}
	pub, err := s.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("evidence key %s: %w", path, err)
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("evidence key %s: %w", path, err)
	}
	return &Signer{s: dsse.WrapSigner(s, PayloadType), keyID: id}, nil
}

// KeyID is the key's id: the first 16 hex digits of the SHA-256 of its
// public key (PKIX, DER).
func (s *Signer) KeyID() string { return s.keyID }

// KeyID is a public key's id (see Signer.KeyID).
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])[:16], nil
}

// Seal signs r: the DSSE envelope, as stored.
func (s *Signer) Seal(r Record) ([]byte, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	env, err := s.s.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("sign record: %w", err)
	}
	return env, nil
}

// Keyring is the public keys an auditor trusts, by id.
type Keyring struct {
	keys map[string]signature.Verifier
}

// LoadKeyring reads PEM public keys.
func LoadKeyring(paths ...string) (*Keyring, error) {
	k := &Keyring{keys: map[string]signature.Verifier{}}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", p, err)
		}
		if err := k.Add(pub); err != nil {
			return nil, fmt.Errorf("public key %s: %w", p, err)
		}
	}
	return k, nil
}

// Add trusts pub.
func (k *Keyring) Add(pub crypto.PublicKey) error {
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return err
	}
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	k.keys[id] = dsse.WrapVerifier(v, dsse.WithExpectedPayloadType(PayloadType))
	return nil
}

// ErrBadSignature: no trusted key verifies the record.
var ErrBadSignature = errors.New("signature not verified by any trusted key")

// Open verifies an envelope against the trusted keys and decodes its
// record; keyID names the key that verified it.
func (k *Keyring) Open(env []byte) (r Record, keyID string, err error) {
	for id, v := range k.keys {
		var payload []byte
		vv := v
		if err := vv.VerifySignature(bytes.NewReader(env), nil); err != nil {
			continue
		}
		if payload, err = decodePayload(env); err != nil {
			return Record{}, id, err
		}
		if err := json.Unmarshal(payload, &r); err != nil {
			return Record{}, id, fmt.Errorf("record: %w", err)
		}
		return r, id, nil
	}
	return Record{}, "", ErrBadSignature
}

// Decode reads an envelope's record without verifying it (for a report
// that says it did not verify).
func Decode(env []byte) (Record, error) {
	payload, err := decodePayload(env)
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(payload, &r); err != nil {
		return Record{}, fmt.Errorf("record: %w", err)
	}
	return r, nil
}

func decodePayload(env []byte) ([]byte, error) {
	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
	}
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if e.PayloadType != PayloadType {
		return nil, fmt.Errorf("envelope: payload type %q, not %q", e.PayloadType, PayloadType)
	}
	return e.Payload, nil
}

// GenerateKey makes an ECDSA P-256 key pair, PEM-encoded (the private key
// unencrypted: keep it in a Secret).
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
}
