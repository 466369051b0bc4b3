package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is made once: RSA key generation is the slow part of these tests.
var testCA = sync.OnceValues(func() ([]byte, error) {
	cert, key, err := NewCA("kubernetes", 24*time.Hour)
	return append(append([]byte{}, cert...), key...), err
})

func ca(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	both, err := testCA()
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(both, []byte("-----BEGIN RSA PRIVATE KEY"))
	return both[:i], both[i:]
}

func TestNewCA(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cn       string
		validity time.Duration
		err      string
	}{
		{name: "ten years", cn: "kubernetes", validity: 10 * 365 * 24 * time.Hour},
		{name: "no name", cn: "", validity: time.Hour, err: "common name is empty"},
		{name: "no validity", cn: "kubernetes", validity: 0, err: "is not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			certPEM, keyPEM, err := newCA(tc.cn, tc.validity, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert, err := ParseCertificate(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.Subject.CommonName != tc.cn {
				t.Fatalf("cert = %+v", cert)
			}
			if !cert.NotAfter.Equal(now.Add(tc.validity)) || !cert.NotBefore.Before(now) {
				t.Fatalf("valid %s to %s", cert.NotBefore, cert.NotAfter)
			}
			if err := cert.CheckSignatureFrom(cert); err != nil {
				t.Fatalf("not self-signed: %v", err)
			}
			block, _ := pem.Decode(keyPEM)
			if block == nil || block.Type != "RSA PRIVATE KEY" {
				t.Fatalf("key PEM = %q", keyPEM)
			}
			key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil || key.N.BitLen() != 2048 || !key.PublicKey.Equal(cert.PublicKey) {
				t.Fatalf("key %v does not match the certificate (%v)", key.N.BitLen(), err)
			}
		})
	}
}

func TestSignClient(t *testing.T) {
	caCert, caKey := ca(t)
	caParsed, _ := ParseCertificate(caCert)
	otherCert, otherKey, err := NewCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		caCert   []byte
		caKey    []byte
		cn       string
		orgs     []string
		validity time.Duration
		now      time.Time
		notAfter time.Time // zero: now + validity
		err      string
	}{
		{name: "admin", cn: "kubernetes-admin", orgs: []string{"kubeadm:cluster-admins"}, validity: time.Hour},
		// A certificate keeps groups as a DER set: in its own order.
		{name: "several groups", cn: "seed", orgs: []string{"system:masters", "seed"}, validity: time.Hour},
		{name: "no groups", cn: "seed", validity: time.Hour},
		{name: "capped to the CA", cn: "seed", validity: 1000 * time.Hour, notAfter: caParsed.NotAfter},
		{name: "expired CA", cn: "seed", validity: time.Hour, now: caParsed.NotAfter.Add(time.Minute), err: "the CA expired"},
		{name: "mismatched key", caKey: otherKey, cn: "seed", validity: time.Hour, err: "does not belong"},
		{name: "client cert as CA", caCert: []byte("leaf"), cn: "seed", validity: time.Hour, err: "is not a CA"},
		{name: "garbage CA", caCert: []byte("nope"), cn: "seed", validity: time.Hour, err: "no PEM certificate"},
		{name: "garbage key", caKey: []byte("nope"), cn: "seed", validity: time.Hour, err: "no PEM private key"},
		{name: "no name", cn: "", validity: time.Hour, err: "common name is empty"},
		{name: "no validity", cn: "seed", validity: -time.Hour, err: "is not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useCert, useKey := caCert, caKey
			if tc.caCert != nil {
				useCert = tc.caCert
			}
			if tc.caKey != nil {
				useKey = tc.caKey
			}
			if string(useCert) == "leaf" {
				leaf, _, err := SignClient(otherCert, otherKey, "leaf", nil, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				useCert = leaf
			}
			now := tc.now
			if now.IsZero() {
				now = time.Now()
			}
			certPEM, keyPEM, err := signClient(useCert, useKey, tc.cn, tc.orgs, tc.validity, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert, err := ParseCertificate(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(caParsed)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("client certificate does not verify against the CA: %v", err)
			}
			if cert.IsCA || cert.Subject.CommonName != tc.cn || strings.Join(slices.Sorted(slices.Values(cert.Subject.Organization)), ",") != strings.Join(slices.Sorted(slices.Values(tc.orgs)), ",") {
				t.Fatalf("subject = %v, CA = %v", cert.Subject, cert.IsCA)
			}
			wantNotAfter := tc.notAfter
			if wantNotAfter.IsZero() {
				wantNotAfter = now.Add(tc.validity).Truncate(time.Second)
			}
			if !cert.NotAfter.Equal(wantNotAfter) || cert.NotBefore.Before(caParsed.NotBefore) {
				t.Fatalf("valid %s to %s, want until %s and not before the CA", cert.NotBefore, cert.NotAfter, wantNotAfter)
			}
			key, err := parsePrivateKey(keyPEM)
			if err != nil || !key.Public().(*rsa.PublicKey).Equal(cert.PublicKey) {
				t.Fatalf("key does not match the certificate (%v)", err)
			}
		})
	}
}

// A CA made elsewhere, with an ECDSA key in SEC 1 or PKCS#8 form, signs too.
func TestSignClientWithECDSACA(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ec-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	sec1, _ := x509.MarshalECPrivateKey(key)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	for typ, raw := range map[string][]byte{"EC PRIVATE KEY": sec1, "PRIVATE KEY": pkcs8} {
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: raw})
		if _, _, err := SignClient(certPEM, keyPEM, "seed", nil, time.Hour); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func TestCACertHash(t *testing.T) {
	caCert, caKey := ca(t)
	parsed, _ := ParseCertificate(caCert)

	// Independently: re-marshal the public key rather than reuse the raw
	// bytes the implementation hashes.
	spki, err := x509.MarshalPKIXPublicKey(parsed.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	want := "sha256:" + hex.EncodeToString(sum[:])

	for _, tc := range []struct {
		name string
		pem  []byte
		want string
		err  string
	}{
		{name: "the CA", pem: caCert, want: want},
		{name: "after another block", pem: append(append([]byte{}, caKey...), caCert...), want: want},
		{name: "garbage", pem: []byte("nope"), err: "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CACertHash(tc.pem)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CACertHash = %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	// And as kubeadm's documentation computes it, when openssl is here.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not found; skipping the cross-check with it")
		return
	}
	pub := exec.Command("openssl", "x509", "-pubkey", "-noout")
	pub.Stdin = bytes.NewReader(caCert)
	pubPEM, err := pub.Output()
	if err != nil {
		t.Fatal(err)
	}
	der := exec.Command("openssl", "pkey", "-pubin", "-outform", "der")
	der.Stdin = bytes.NewReader(pubPEM)
	spkiDER, err := der.Output()
	if err != nil {
		t.Fatal(err)
	}
	osum := sha256.Sum256(spkiDER)
	if got, _ := CACertHash(caCert); got != "sha256:"+hex.EncodeToString(osum[:]) {
		t.Fatalf("CACertHash = %s, openssl says sha256:%x", got, osum)
	}
}
