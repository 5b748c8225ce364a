package evidence

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// Signer signs records: a key drillbot is given (a PEM private key, as a
// Kubernetes Secret mounts it), through sigstore's signature and DSSE
// packages.
type Signer struct {
	s     signature.Signer
	pub   crypto.PublicKey
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
	return &Signer{s: dsse.WrapSigner(s, PayloadType), pub: pub, keyID: id}, nil
}

// PublicKey is the signer's public key.
func (s *Signer) PublicKey() crypto.PublicKey { return s.pub }

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

// Role is what a trusted key may sign.
type Role int

const (
	// RoleRun keys are drillbot's own: they sign run records (and may
	// sign annotations).
	RoleRun Role = iota
	// RoleAnnotator keys are people's: they sign annotations only. A run
	// record signed by one is what a person says happened, not what
	// drillbot observed, and never counts as a run.
	RoleAnnotator
)

// Keyring is the public keys an auditor trusts, by id, each with its role.
type Keyring struct {
	keys map[string]trustedKey
}

type trustedKey struct {
	// v verifies a signature over DSSE's pre-authentication encoding.
	v    signature.Verifier
	role Role
}

// LoadKeyring reads PEM public keys of drillbot's (RoleRun).
func LoadKeyring(paths ...string) (*Keyring, error) {
	k := &Keyring{keys: map[string]trustedKey{}}
	return k, k.Load(RoleRun, paths...)
}

// Load reads PEM public keys and trusts them for role.
func (k *Keyring) Load(role Role, paths ...string) error {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("public key: %w", err)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
		if err != nil {
			return fmt.Errorf("public key %s: %w", p, err)
		}
		if err := k.AddRole(pub, role); err != nil {
			return fmt.Errorf("public key %s: %w", p, err)
		}
	}
	return nil
}

// Add trusts pub as one of drillbot's keys (RoleRun).
func (k *Keyring) Add(pub crypto.PublicKey) error { return k.AddRole(pub, RoleRun) }

// AddRole trusts pub for role. A key given twice keeps the narrower role.
func (k *Keyring) AddRole(pub crypto.PublicKey, role Role) error {
	if k.keys == nil {
		k.keys = map[string]trustedKey{}
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return err
	}
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	if old, ok := k.keys[id]; ok && old.role > role {
		role = old.role
	}
	k.keys[id] = trustedKey{v: v, role: role}
	return nil
}

// ErrBadSignature: no trusted key verifies the record.
var ErrBadSignature = errors.New("signature not verified by any trusted key")

// ErrWrongRole: the record is signed by a trusted key that may not sign
// records of its kind (an annotator's key on a run record).
var ErrWrongRole = errors.New("signed by a key not trusted for this kind of record")

// Open verifies an envelope against the trusted keys, decodes its record,
// and checks that the key may sign its kind; keyID names the key that
// verified it. It is DSSE's verification (sigstore's dsse wrapper does the
// same), with the envelope parsed once: a signature of a trusted key over
// the pre-authentication encoding of payload type and payload.
func (k *Keyring) Open(env []byte) (r Record, keyID string, err error) {
	e, payload, err := parseEnvelope(env)
	if err != nil {
		return Record{}, "", fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	pae := ssldsse.PAE(e.PayloadType, payload)
	id, t, ok := k.verified(e.Signatures, pae)
	if !ok {
		return Record{}, "", ErrBadSignature
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return Record{}, id, fmt.Errorf("record: %w", err)
	}
	if t.role == RoleAnnotator && r.Kind != KindAnnotation {
		return r, id, fmt.Errorf("%w: a %s signed by annotator key %s", ErrWrongRole, r.Kind, id)
	}
	return r, id, nil
}

// verified is the trusted key one of sigs verifies over pae, drillbot's
// keys before annotators'.
func (k *Keyring) verified(sigs []ssldsse.Signature, pae []byte) (string, trustedKey, bool) {
	for _, role := range []Role{RoleRun, RoleAnnotator} {
		for _, s := range sigs {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err != nil {
				continue
			}
			for id, t := range k.keys {
				if t.role == role && t.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae)) == nil {
					return id, t, true
				}
			}
		}
	}
	return "", trustedKey{}, false
}

// Decode reads an envelope's record without verifying it (for a report
// that says it did not verify).
func Decode(env []byte) (Record, error) {
	_, payload, err := parseEnvelope(env)
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(payload, &r); err != nil {
		return Record{}, fmt.Errorf("record: %w", err)
	}
	return r, nil
}

// parseEnvelope parses a DSSE envelope of drillbot's payload type and decodes its
// payload (nothing verified).
func parseEnvelope(env []byte) (ssldsse.Envelope, []byte, error) {
	var e ssldsse.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		return e, nil, fmt.Errorf("envelope: %w", err)
	}
	if e.PayloadType != PayloadType {
		return e, nil, fmt.Errorf("envelope: payload type %q, not %q", e.PayloadType, PayloadType)
	}
	payload, err := e.DecodeB64Payload()
	if err != nil {
		return e, nil, fmt.Errorf("envelope: %w", err)
	}
	return e, payload, nil
}

// GenerateKey makes an ECDSA P-256 key pair, PEM-encoded (the private key
// unencrypted: keep it in a Secret).
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
}
