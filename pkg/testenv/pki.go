package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// adminUser is the identity tests act as by default. Its group,
// system:masters, passes every authorizer, so it can also impersonate.
const (
	adminUser  = "seed-testenv-admin"
	adminGroup = "system:masters"
)

// pki holds the credentials an Env is started with, as PEM, and the files
// the apiserver reads them from.
type pki struct {
	caCert     []byte
	clientCert []byte
	clientKey  []byte

	caFile, servingCertFile, servingKeyFile string
	saKeyFile                               string
}

// writePKI makes a throwaway CA, the apiserver's serving certificate, the
// admin's client certificate and a service-account signing key in dir.
// ECDSA keeps this to a millisecond or two where RSA would cost far more.
func writePKI(dir string) (*pki, error) {
	caKey, err := newKey()
	if err != nil {
		return nil, err
	}
	caTemplate := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "seed-testenv-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, caCert, err := sign(caTemplate, caKey.Public(), nil, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}

	servingKey, err := newKey()
	if err != nil {
		return nil, err
	}
	servingDER, _, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, servingKey.Public(), caCert, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the serving certificate: %w", err)
	}

	clientKey, err := newKey()
	if err != nil {
		return nil, err
	}
	clientDER, _, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: adminUser, Organization: []string{adminGroup}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, clientKey.Public(), caCert, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the admin certificate: %w", err)
	}

	saKey, err := newKey()
	if err != nil {
		return nil, err
	}

	p := &pki{
		caCert:          pemBlock("CERTIFICATE", caDER),
		clientCert:      pemBlock("CERTIFICATE", clientDER),
		caFile:          filepath.Join(dir, "ca.crt"),
		servingCertFile: filepath.Join(dir, "apiserver.crt"),
		servingKeyFile:  filepath.Join(dir, "apiserver.key"),
		saKeyFile:       filepath.Join(dir, "sa.key"),
	}
	if p.clientKey, err = keyPEM(clientKey); err != nil {
		return nil, err
	}
	servingKeyPEM, err := keyPEM(servingKey)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		p.caFile:          p.caCert,
		p.servingCertFile: pemBlock("CERTIFICATE", servingDER),
		p.servingKeyFile:  servingKeyPEM,
		p.saKeyFile:       saKeyPEM,
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return p, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return key, nil
}

// sign issues template for pub, signed by parent's key; a nil parent makes
// the certificate self-signed. It returns the DER and the parsed result.
func sign(template *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	template.SerialNumber = serial
	// Backdated so that small clock differences never make it not yet valid.
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent = template
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding a key: %w", err)
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}
