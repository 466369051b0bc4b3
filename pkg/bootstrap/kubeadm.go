package bootstrap

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// The subset of kubeadm.k8s.io/v1beta4 (Kubernetes 1.31 and later) and of
// the kubelet and kube-proxy component configs that Seed sets. Declared
// here, not imported, to keep k8s.io/kubernetes out of Seed's module.
const (
	kubeadmAPIVersion   = "kubeadm.k8s.io/v1beta4"
	kubeletAPIVersion   = "kubelet.config.k8s.io/v1beta1"
	kubeProxyAPIVersion = "kubeproxy.config.k8s.io/v1alpha1"
	criSocket           = "unix:///run/containerd/containerd.sock"
)

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

type nodeRegistration struct {
	Name      string `json:"name"`
	CRISocket string `json:"criSocket"`
	// Taints is never omitted: kubeadm reads a missing list as "add the
	// control-plane taint" and an empty one as "none".
	Taints           []taint `json:"taints"`
	KubeletExtraArgs []arg   `json:"kubeletExtraArgs,omitempty"`
	// Nothing is ever pulled on a Seed node: every image is preloaded.
	ImagePullPolicy string `json:"imagePullPolicy"`
}

type patches struct {
	Directory string `json:"directory"`
}

type initConfiguration struct {
	typeMeta
	NodeRegistration nodeRegistration `json:"nodeRegistration"`
	SkipPhases       []string         `json:"skipPhases,omitempty"`
	Patches          *patches         `json:"patches,omitempty"`
}

type networking struct {
	PodSubnet     string `json:"podSubnet"`
	ServiceSubnet string `json:"serviceSubnet"`
	DNSDomain     string `json:"dnsDomain"`
}

type apiServer struct {
	CertSANs  []string `json:"certSANs,omitempty"`
	ExtraArgs []arg    `json:"extraArgs,omitempty"`
}

type controlPlaneComponent struct {
	ExtraArgs []arg `json:"extraArgs,omitempty"`
}

type localEtcd struct {
	ImageTag string `json:"imageTag,omitempty"`
}

type etcdConfig struct {
	Local localEtcd `json:"local"`
}

type clusterConfiguration struct {
	typeMeta
	ClusterName          string                `json:"clusterName"`
	KubernetesVersion    string                `json:"kubernetesVersion"`
	ControlPlaneEndpoint string                `json:"controlPlaneEndpoint"`
	Networking           networking            `json:"networking"`
	APIServer            apiServer             `json:"apiServer"`
	ControllerManager    controlPlaneComponent `json:"controllerManager"`
	Etcd                 *etcdConfig           `json:"etcd,omitempty"`
}

// controllerManagerArgs raise kube-controller-manager's client rate limit
// (20 requests a second, bursts of 30, by default). With one service
// account per controller, as kubeadm configures it, starting each of some
// forty controllers costs three requests (its ServiceAccount and a token),
// and no controller's informers start until all have: at the default limit
// that alone held every Deployment and DaemonSet, the agent's and the pod
// network's included, for about six seconds after the API server was up.
var controllerManagerArgs = []arg{{Name: "kube-api-qps", Value: "100"}, {Name: "kube-api-burst", Value: "200"}}

// APIServerShutdownDelay is how long a stopping kube-apiserver keeps
// answering after it has taken its address out of the kubernetes Service
// (--shutdown-delay-duration; none by default). Without it, an API server
// stopped during a control-plane replacement refuses connections at once,
// while kube-proxy on every node still sends the Service's traffic to it
// for up to a second (its minimum sync period): in-cluster clients saw
// refused connections. Five seconds covers that, and the agent's load
// balancer, which drops a backend whose /readyz fails within two.
const APIServerShutdownDelay = 5 * time.Second

var apiServerArgs = []arg{{Name: "shutdown-delay-duration", Value: APIServerShutdownDelay.String()}}

// APIServerArgs are the extra kube-apiserver flags of every control plane,
// by name. The agent adds any a cluster's kubeadm configuration lacks
// before a new control plane joins, so that clusters an older seed made get
// them too.
func APIServerArgs() map[string]string {
	m := map[string]string{}
	for _, a := range apiServerArgs {
		m[a.Name] = a.Value
	}
	return m
}

type bootstrapTokenDiscovery struct {
	APIServerEndpoint string   `json:"apiServerEndpoint"`
	Token             string   `json:"token"`
	CACertHashes      []string `json:"caCertHashes"`
}

type discovery struct {
	BootstrapToken bootstrapTokenDiscovery `json:"bootstrapToken"`
	// TLSBootstrapToken is the token the kubelet uses for its first
	// certificate: the same one.
	TLSBootstrapToken string `json:"tlsBootstrapToken"`
}

// joinControlPlane makes a join a control-plane join. Empty, kubeadm
// advertises the address of the interface of the default route, and finds
// the shared certificates on disk (no certificateKey: Seed ships them).
type joinControlPlane struct{}

type joinConfiguration struct {
	typeMeta
	NodeRegistration nodeRegistration  `json:"nodeRegistration"`
	Discovery        discovery         `json:"discovery"`
	ControlPlane     *joinControlPlane `json:"controlPlane,omitempty"`
	SkipPhases       []string          `json:"skipPhases,omitempty"`
	Patches          *patches          `json:"patches,omitempty"`
}

type kubeletConfiguration struct {
	typeMeta
	CgroupDriver string `json:"cgroupDriver"`
	FailSwapOn   bool   `json:"failSwapOn"`
	FailCgroupV1 *bool  `json:"failCgroupV1,omitempty"`
	// Images cannot be pulled again once collected, and a node in a
	// container sees its host's disk: never collect, never evict for disk.
	ImageGCHighThresholdPercent int32             `json:"imageGCHighThresholdPercent"`
	EvictionHard                map[string]string `json:"evictionHard"`
}

type kubeProxyConntrack struct {
	// Zero leaves the kernel's limits alone: a node in a container cannot
	// set them (read-only /sys), and kube-proxy would fail trying.
	MaxPerCore            *int32 `json:"maxPerCore"`
	TCPEstablishedTimeout string `json:"tcpEstablishedTimeout"`
	TCPCloseWaitTimeout   string `json:"tcpCloseWaitTimeout"`
}

type kubeProxyConfiguration struct {
	typeMeta
	Mode      string             `json:"mode"`
	Conntrack kubeProxyConntrack `json:"conntrack"`
}

// nodeRegistrationFor renders what kubeadm registers the Node with.
func nodeRegistrationFor(c Cluster, m Machine) nodeRegistration {
	nr := nodeRegistration{
		Name:            m.Name,
		CRISocket:       criSocket,
		Taints:          []taint{},
		ImagePullPolicy: "Never",
	}
	if c.PullImages {
		nr.ImagePullPolicy = "IfNotPresent"
	}
	for _, t := range m.Taints {
		nr.Taints = append(nr.Taints, taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	if len(m.Labels) > 0 {
		pairs := make([]string, 0, len(m.Labels))
		for _, k := range sortedKeys(m.Labels) {
			pairs = append(pairs, k+"="+m.Labels[k])
		}
		nr.KubeletExtraArgs = append(nr.KubeletExtraArgs, arg{Name: "node-labels", Value: strings.Join(pairs, ",")})
	}
	return nr
}

// skipPhases lists the kubeadm phases Seed skips. Preflight checks fail in
// containers (swap, kernel modules, /proc settings Docker owns), and what
// they would check is fixed by the node image.
func skipPhases() []string { return []string{"preflight"} }

func renderInit(c Cluster, m Machine) ([]byte, error) {
	docs := []any{
		initConfiguration{
			typeMeta:         typeMeta{kubeadmAPIVersion, "InitConfiguration"},
			NodeRegistration: nodeRegistrationFor(c, m),
			SkipPhases:       skipPhases(),
			Patches:          &patches{Directory: PatchesDir},
		},
		clusterConfiguration{
			typeMeta:             typeMeta{kubeadmAPIVersion, "ClusterConfiguration"},
			ClusterName:          c.Name,
			KubernetesVersion:    c.KubernetesVersion,
			ControlPlaneEndpoint: c.ControlPlaneEndpoint,
			Networking:           networking{PodSubnet: c.PodSubnet, ServiceSubnet: c.ServiceSubnet, DNSDomain: "cluster.local"},
			APIServer:            apiServer{CertSANs: c.CertSANs, ExtraArgs: apiServerArgs},
			ControllerManager:    controlPlaneComponent{ExtraArgs: controllerManagerArgs},
			Etcd:                 etcdFor(c.KubernetesVersion),
		},
		kubeletConfig(c.KubernetesVersion),
		kubeProxyConfiguration{
			typeMeta: typeMeta{kubeProxyAPIVersion, "KubeProxyConfiguration"},
			Mode:     "iptables",
			Conntrack: kubeProxyConntrack{
				MaxPerCore:            new(int32),
				TCPEstablishedTimeout: "0s",
				TCPCloseWaitTimeout:   "0s",
			},
		},
	}
	return marshalDocs(docs)
}

// kubeletConfig is the cluster-wide kubelet configuration (kubeadm stores it
// in the kubelet-config ConfigMap; joining nodes download it).
func kubeletConfig(version string) kubeletConfiguration {
	kc := kubeletConfiguration{
		typeMeta:                    typeMeta{kubeletAPIVersion, "KubeletConfiguration"},
		CgroupDriver:                "systemd",
		FailSwapOn:                  false,
		ImageGCHighThresholdPercent: 100,
		EvictionHard: map[string]string{
			"nodefs.available":   "0%",
			"nodefs.inodesFree":  "0%",
			"imagefs.available":  "0%",
			"imagefs.inodesFree": "0%",
		},
	}
	if minor, _ := minorOf(version); minor >= 35 {
		no := false
		kc.FailCgroupV1 = &no
	}
	return kc
}

// etcdFor pins etcd's image where Seed runs another etcd than kubeadm's
// default for the version (see EtcdImageTag).
func etcdFor(version string) *etcdConfig {
	tag := EtcdImageTag(version)
	if tag == "" {
		return nil
	}
	return &etcdConfig{Local: localEtcd{ImageTag: tag}}
}

func renderJoin(c Cluster, m Machine, token string, caCertHashes []string, controlPlane bool) ([]byte, error) {
	var cp *joinControlPlane
	if controlPlane {
		cp = &joinControlPlane{}
	}
	return marshalDocs([]any{joinConfiguration{
		ControlPlane:     cp,
		typeMeta:         typeMeta{kubeadmAPIVersion, "JoinConfiguration"},
		NodeRegistration: nodeRegistrationFor(c, m),
		Discovery: discovery{
			BootstrapToken: bootstrapTokenDiscovery{
				APIServerEndpoint: c.ControlPlaneEndpoint,
				Token:             token,
				CACertHashes:      caCertHashes,
			},
			TLSBootstrapToken: token,
		},
		SkipPhases: skipPhases(),
		Patches:    &patches{Directory: PatchesDir},
	}})
}

func marshalDocs(docs []any) ([]byte, error) {
	var b bytes.Buffer
	for i, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("rendering kubeadm config: %w", err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
