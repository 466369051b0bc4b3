package joiner

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/pkg/pki"
	"github.com/seedhq/seed/providers"
)

// Joiner implements the agent's Bootstrapper for worker machines.
type Joiner struct {
	Client kubernetes.Interface
	// Rand is the token source (crypto/rand when nil).
	Rand io.Reader
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// TokenTTL bounds how long a join token works; it must outlast the
	// machine's start-up (default: the spec's nodeStartupTimeout plus 5m).
	TokenTTL time.Duration
	// Capabilities returns what the provider the machines are created
	// with declares; its images decide whether kubeadm pulls. Nil, or a
	// provider not known yet, means the zero Capabilities: pull.
	Capabilities func() providers.Capabilities
	// PKIDir is where the control plane the agent runs on keeps its
	// certificates (default bootstrap.PKIDir, mounted read-only from the
	// node); a joining control plane gets the shared ones from there.
	PKIDir string
	// Share, when set, lets the joins rendered within its window share one
	// read of cluster-info and one token: a scale-up of a thousand
	// machines then costs two requests, not two thousand. Nil gives every
	// machine a token of its own.
	Share *Share
}

// Share is what the joins of one burst of creations have in common. The
// zero value is not usable: see NewShare.
type Share struct {
	window time.Duration
	mu     sync.Mutex
	// infoAt and tokenAt are when endpoint/caPEM and token were got.
	infoAt, tokenAt time.Time
	endpoint        string
	caPEM           []byte
	token           string
}

// NewShare shares cluster-info and tokens for window: a token is handed to
// the joins rendered up to window after it was made, and outlives the
// last of them by the Joiner's TokenTTL less window at worst, so window
// must stay small beside it (seconds, not minutes).
func NewShare(window time.Duration) *Share { return &Share{window: window} }

// Bootstrap creates a token for the machine and renders its kubeadm join.
func (j Joiner) Bootstrap(ctx context.Context, c *v1alpha1.Cluster, m providers.MachineSpec) (providers.Bootstrap, error) {
	endpoint, caPEM, token, err := j.joinInputs(ctx, c, m.Name)
	if err != nil {
		return providers.Bootstrap{}, err
	}
	hash, err := pki.CACertHash(caPEM)
	if err != nil {
		return providers.Bootstrap{}, fmt.Errorf("hashing the cluster CA: %w", err)
	}
	machine := bootstrap.Machine{
		Name:              m.Name,
		KubernetesVersion: m.KubernetesVersion,
		Labels:            map[string]string{providers.LabelPool: m.Pool},
	}
	for _, p := range c.Spec.NodePools {
		if p.Name == m.Pool {
			maps.Copy(machine.Labels, p.Labels)
			machine.Taints = p.Taints
		}
	}
	cluster := bootstrap.Cluster{
		Name:                 c.Metadata.Name,
		KubernetesVersion:    c.Spec.KubernetesVersion,
		ControlPlaneEndpoint: endpoint,
		PullImages:           !j.capabilities().PreloadedImages,
	}
	var b providers.Bootstrap
	if m.Role == providers.RoleControlPlane {
		var certs map[string][]byte
		if certs, err = j.sharedCertificates(); err != nil {
			return providers.Bootstrap{}, err
		}
		// The machine runs the version the cluster's kubeadm configuration
		// was raised to, which may differ from the spec's mid-upgrade.
		cluster.KubernetesVersion = m.KubernetesVersion
		b, err = bootstrap.JoinControlPlane(cluster, machine, token, []string{hash}, certs)
	} else {
		b, err = bootstrap.Join(cluster, machine, token, []string{hash})
	}
	if err != nil {
		return providers.Bootstrap{}, fmt.Errorf("rendering the join of machine %s: %w", m.Name, err)
	}
	return b, nil
}

// joinInputs reads the cluster's endpoint and CA and makes a token, or
// takes them from the Share when it holds them fresh.
func (j Joiner) joinInputs(ctx context.Context, c *v1alpha1.Cluster, machine string) (endpoint string, caPEM []byte, token string, err error) {
	sh := j.Share
	if sh == nil {
		if endpoint, caPEM, err = j.clusterInfo(ctx); err != nil {
			return "", nil, "", err
		}
		token, err = j.createToken(ctx, c, machine)
		return endpoint, caPEM, token, err
	}
	// Held across the requests, so that a burst of joins rendered in
	// parallel waits for the first one's token instead of making its own.
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := j.now()
	if sh.endpoint == "" || now.Sub(sh.infoAt) >= sh.window {
		if sh.endpoint, sh.caPEM, err = j.clusterInfo(ctx); err != nil {
			sh.endpoint = ""
			return "", nil, "", err
		}
		sh.infoAt = now
	}
	if sh.token == "" || now.Sub(sh.tokenAt) >= sh.window {
		if sh.token, err = j.createToken(ctx, c, machine); err != nil {
			sh.token = ""
			return "", nil, "", err
		}
		sh.tokenAt = now
	}
	return sh.endpoint, sh.caPEM, sh.token, nil
}

func (j Joiner) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

// sharedCertificates reads the certificate authorities and service-account
// keys every control plane of the cluster shares.
func (j Joiner) sharedCertificates() (map[string][]byte, error) {
	dir := j.PKIDir
	if dir == "" {
		dir = bootstrap.PKIDir
	}
	certs := make(map[string][]byte, len(bootstrap.SharedCertificates))
	for _, name := range bootstrap.SharedCertificates {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading the control plane's %s for a joining control plane: %w "+
				"(the agent's pod mounts the node's %s read-only)", name, err, bootstrap.PKIDir)
		}
		certs[name] = b
	}
	return certs, nil
}

// sharedWith says, in a token's description, that other machines may use it.
func (j Joiner) sharedWith() string {
	if j.Share == nil {
		return ""
	}
	return fmt.Sprintf(", and of the machines created up to %s after it", j.Share.window)
}

func (j Joiner) capabilities() providers.Capabilities {
	if j.Capabilities == nil {
		return providers.Capabilities{}
	}
	return j.Capabilities()
}

// clusterInfo reads the API server endpoint and CA that kubeadm publishes
// for joining nodes.
func (j Joiner) clusterInfo(ctx context.Context) (endpoint string, caPEM []byte, err error) {
	cm, err := j.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("reading kube-public/cluster-info: %w", err)
	}
	cfg, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
	if err != nil {
		return "", nil, fmt.Errorf("parsing kube-public/cluster-info: %w", err)
	}
	for _, cl := range cfg.Clusters {
		u, err := url.Parse(cl.Server)
		if err != nil || u.Host == "" {
			return "", nil, fmt.Errorf("kube-public/cluster-info has an unusable server %q", cl.Server)
		}
		if len(cl.CertificateAuthorityData) == 0 {
			return "", nil, fmt.Errorf("kube-public/cluster-info carries no CA")
		}
		return u.Host, cl.CertificateAuthorityData, nil
	}
	return "", nil, fmt.Errorf("kube-public/cluster-info names no cluster")
}

// createToken stores a bootstrap token the way kubeadm does, so the
// API server's bootstrap authenticator and signer accept it, and the token
// cleaner removes it when it expires.
func (j Joiner) createToken(ctx context.Context, c *v1alpha1.Cluster, machine string) (string, error) {
	token, err := bootstrap.NewToken(j.Rand)
	if err != nil {
		return "", err
	}
	id, secret, _ := strings.Cut(token, ".")
	now := j.now
	ttl := j.TokenTTL
	if ttl == 0 {
		ttl = 5 * time.Minute
		if d := c.Spec.Health.NodeStartupTimeout; d != nil {
			ttl += d.Duration
		} else {
			ttl += v1alpha1.DefaultNodeStartupTimeout
		}
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "bootstrap-token-" + id,
			Namespace: metav1.NamespaceSystem,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "seed-agent", providers.LabelMachine: machine},
		},
		Type: corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"description":                    "seed agent: join of machine " + machine + j.sharedWith(),
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     now().Add(ttl).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              "system:bootstrappers:kubeadm:default-node-token",
		},
	}
	if _, err := j.Client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating a bootstrap token for machine %s: %w", machine, err)
	}
	return token, nil
}
