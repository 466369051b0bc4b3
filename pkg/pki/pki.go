package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// rsaBits is the size of every key made here. kubeadm takes a pre-provided
// CA of RSA or ECDSA; RSA-2048 is its default and what every version reads.
const rsaBits = 2048

// backdate starts certificates a little in the past, so that a machine
// whose clock is slightly behind the seed's accepts them at once.
const backdate = 5 * time.Minute

// NewCA returns a self-signed CA certificate and its RSA-2048 key, both PEM
// (the key PKCS#1, "RSA PRIVATE KEY", as kubeadm writes its own), valid for
// validity from now. Written as ca.crt and ca.key under kubeadm's
// certificate directory, kubeadm uses them instead of making a CA.
func NewCA(commonName string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return newCA(commonName, validity, time.Now())
}

func newCA(commonName string, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("making a CA: the common name is empty")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("making CA %q: validity %s is not positive", commonName, validity)
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, nil, fmt.Errorf("making CA %q: generating its key: %w", commonName, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, fmt.Errorf("making CA %q: %w", commonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(validity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// As kubeadm's own CA does.
		DNSNames: []string{commonName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("making CA %q: signing: %w", commonName, err)
	}
	return encodeCert(der), encodeRSAKey(key), nil
}

// SignClient returns a client certificate (and its new RSA-2048 key, PEM)
// for commonName in the groups orgs, signed by the CA. It is valid for
// validity from now, cut short to the CA's own expiry.
func SignClient(caCertPEM, caKeyPEM []byte, commonName string, orgs []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return signClient(caCertPEM, caKeyPEM, commonName, orgs, validity, time.Now())
}

func signClient(caCertPEM, caKeyPEM []byte, commonName string, orgs []string, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	fail := func(err error) ([]byte, []byte, error) {
		return nil, nil, fmt.Errorf("signing a client certificate for %q: %w", commonName, err)
	}
	if commonName == "" {
		return fail(errors.New("the common name is empty"))
	}
	if validity <= 0 {
		return fail(fmt.Errorf("validity %s is not positive", validity))
	}
	ca, err := ParseCertificate(caCertPEM)
	if err != nil {
		return fail(err)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fail(fmt.Errorf("certificate %q is not a CA", ca.Subject.CommonName))
	}
	caKey, err := parsePrivateKey(caKeyPEM)
	if err != nil {
		return fail(err)
	}
	if pub, ok := caKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(ca.PublicKey) {
		return fail(errors.New("the CA key does not belong to the CA certificate"))
	}
	if !now.Before(ca.NotAfter) {
		return fail(fmt.Errorf("the CA expired at %s", ca.NotAfter.Format(time.RFC3339)))
	}

	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return fail(fmt.Errorf("generating its key: %w", err))
	}
	serial, err := serialNumber()
	if err != nil {
		return fail(err)
	}
	notBefore := now.Add(-backdate)
	if notBefore.Before(ca.NotBefore) {
		notBefore = ca.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: orgs},
		NotBefore:    notBefore.UTC(),
		NotAfter:     notAfter.UTC(),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fail(fmt.Errorf("signing: %w", err))
	}
	return encodeCert(der), encodeRSAKey(key), nil
}

// CACertHash returns the CA's public key pin in kubeadm's discovery format,
// "sha256:<hex>", the SHA-256 of the certificate's DER-encoded
// SubjectPublicKeyInfo: what `kubeadm join --discovery-token-ca-cert-hash`
// takes.
func CACertHash(caCertPEM []byte) (string, error) {
	ca, err := ParseCertificate(caCertPEM)
	if err != nil {
		return "", fmt.Errorf("hashing the CA: %w", err)
	}
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ParseCertificate parses the first certificate in PEM data.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		return cert, nil
	}
}

// parsePrivateKey reads the PEM key formats kubeadm reads: PKCS#1 RSA, SEC 1
// EC and PKCS#8.
func parsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
	default:
		return nil, fmt.Errorf("unsupported PEM block %q for a private key", block.Type)
	}
}

func serialNumber() (*big.Int, error) {
	// 127 random bits plus one: positive and at most 16 octets.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeRSAKey(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}
