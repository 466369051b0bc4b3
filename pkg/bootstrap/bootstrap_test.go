package bootstrap

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

const (
	testToken = "abcdef.0123456789abcdef"
	testHash  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func testCluster() Cluster {
	return Cluster{
		Name:                 "demo",
		KubernetesVersion:    "v1.34.2",
		ControlPlaneEndpoint: "demo-control-plane:6443",
		CertSANs:             []string{"127.0.0.1", "localhost"},
		CACert:               []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		CAKey:                []byte("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"),
	}
}

// docs splits a multi-document YAML file into objects keyed by kind.
func docs(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range strings.Split(string(b), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, d)
		}
		kind, _ := obj["kind"].(string)
		if _, dup := out[kind]; dup {
			t.Fatalf("two %s documents", kind)
		}
		out[kind] = obj
	}
	return out
}

// get walks a parsed document along a dotted path.
func get(t *testing.T, obj map[string]any, path string) any {
	t.Helper()
	var cur any = obj
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: %s is not an object", path, p)
		}
		cur = m[p]
	}
	return cur
}

func file(t *testing.T, b providers.Bootstrap, path string) providers.File {
	t.Helper()
	for _, f := range b.Files {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("no file %s among %d", path, len(b.Files))
	return providers.File{}
}

func hasFile(b providers.Bootstrap, path string) bool {
	for _, f := range b.Files {
		if f.Path == path {
			return true
		}
	}
	return false
}

func TestControlPlane(t *testing.T) {
	tests := []struct {
		name       string
		cluster    func(*Cluster)
		machine    Machine
		wantTaints []any
		wantLabels string
		wantPatch  bool
		wantCA     bool
	}{
		{
			name:       "defaults: no taints, given CA",
			machine:    Machine{Name: "demo-control-plane"},
			wantTaints: []any{},
			wantCA:     true,
		},
		{
			name: "labels and taints",
			machine: Machine{
				Name:   "demo-control-plane",
				Labels: map[string]string{"seed.dev/pool": "control-plane", "node.kubernetes.io/exclude-from-external-load-balancers": ""},
				Taints: []v1alpha1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}},
			},
			wantTaints: []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}},
			wantLabels: "node.kubernetes.io/exclude-from-external-load-balancers=,seed.dev/pool=control-plane",
			wantCA:     true,
		},
		{
			name:       "1.35 keeps working on cgroup v1; kubeadm makes the CA",
			cluster:    func(c *Cluster) { c.KubernetesVersion = "v1.35.0"; c.CACert, c.CAKey = nil, nil },
			machine:    Machine{Name: "cp"},
			wantTaints: []any{},
			wantPatch:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster()
			if tt.cluster != nil {
				tt.cluster(&c)
			}
			b, err := ControlPlane(c, tt.machine)
			if err != nil {
				t.Fatal(err)
			}
			cfg := file(t, b, KubeadmConfigPath)
			if cfg.Mode != 0o600 {
				t.Errorf("kubeadm config mode %o, want 600", cfg.Mode)
			}
			d := docs(t, cfg.Content)
			for _, kind := range []string{"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"} {
				if d[kind] == nil {
					t.Fatalf("no %s in:\n%s", kind, cfg.Content)
				}
			}
			if v := get(t, d["InitConfiguration"], "apiVersion"); v != "kubeadm.k8s.io/v1beta4" {
				t.Errorf("apiVersion = %v", v)
			}
			cc := d["ClusterConfiguration"]
			for path, want := range map[string]any{
				"kubernetesVersion":        c.KubernetesVersion,
				"controlPlaneEndpoint":     "demo-control-plane:6443",
				"clusterName":              "demo",
				"networking.podSubnet":     DefaultPodSubnet,
				"networking.serviceSubnet": DefaultServiceSubnet,
			} {
				if got := get(t, cc, path); got != want {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
			}
			if got := get(t, cc, "apiServer.certSANs"); !reflect.DeepEqual(got, []any{"127.0.0.1", "localhost"}) {
				t.Errorf("certSANs = %v", got)
			}
			// A stopping API server keeps answering while kube-proxy
			// catches up with its leaving the kubernetes Service.
			if got, want := get(t, cc, "apiServer.extraArgs"), []any{map[string]any{"name": "shutdown-delay-duration", "value": "5s"}}; !reflect.DeepEqual(got, want) {
				t.Errorf("apiServer.extraArgs = %v, want %v", got, want)
			}
			ic := d["InitConfiguration"]
			if got := get(t, ic, "nodeRegistration.name"); got != tt.machine.Name {
				t.Errorf("node name = %v", got)
			}
			if got := get(t, ic, "nodeRegistration.taints"); !reflect.DeepEqual(got, tt.wantTaints) {
				t.Errorf("taints = %#v, want %#v", got, tt.wantTaints)
			}
			if got := kubeletArg(t, ic, "node-labels"); got != tt.wantLabels {
				t.Errorf("node-labels = %q, want %q", got, tt.wantLabels)
			}
			if got := get(t, ic, "skipPhases"); !reflect.DeepEqual(got, []any{"preflight"}) {
				t.Errorf("skipPhases = %v", got)
			}
			kc := d["KubeletConfiguration"]
			if got := get(t, kc, "cgroupDriver"); got != "systemd" {
				t.Errorf("cgroupDriver = %v", got)
			}
			_, hasFail := kc["failCgroupV1"]
			if hasFail != tt.wantPatch || hasFile(b, PatchesDir+"/kubeletconfiguration0+merge.yaml") != tt.wantPatch {
				t.Errorf("failCgroupV1 set = %v, patch = %v; want both %v", hasFail, !hasFail, tt.wantPatch)
			}
			if hasFile(b, CACertPath) != tt.wantCA || hasFile(b, CAKeyPath) != tt.wantCA {
				t.Errorf("CA files present = %v, want %v", hasFile(b, CACertPath), tt.wantCA)
			}
			if tt.wantCA && file(t, b, CAKeyPath).Mode != 0o600 {
				t.Errorf("CA key is not root-only")
			}
			for _, want := range []string{"kubeadm init --config " + KubeadmConfigPath, ManifestsDir + "/*.yaml", MarkerPath, ProviderIDPath} {
				if !strings.Contains(b.Script, want) {
					t.Errorf("script lacks %q", want)
				}
			}
			checkSyntax(t, b.Script)
		})
	}
}

func kubeletArg(t *testing.T, obj map[string]any, name string) string {
	t.Helper()
	args, _ := get(t, obj, "nodeRegistration.kubeletExtraArgs").([]any)
	for _, a := range args {
		m := a.(map[string]any)
		if m["name"] == name {
			return m["value"].(string)
		}
	}
	return ""
}

func TestJoin(t *testing.T) {
	c := testCluster()
	m := Machine{
		Name:              "demo-workers-abc12",
		KubernetesVersion: "v1.33.6",
		Labels:            map[string]string{"seed.dev/pool": "workers", "tier": "web"},
		Taints:            []v1alpha1.Taint{{Key: "dedicated", Value: "web", Effect: "NoExecute"}},
	}
	b, err := Join(c, m, testToken, []string{testHash})
	if err != nil {
		t.Fatal(err)
	}
	cfg := file(t, b, KubeadmConfigPath)
	if cfg.Mode != 0o600 {
		t.Errorf("join config (it holds the token) has mode %o", cfg.Mode)
	}
	d := docs(t, cfg.Content)
	jc := d["JoinConfiguration"]
	if jc == nil || len(d) != 1 {
		t.Fatalf("want exactly one JoinConfiguration, got:\n%s", cfg.Content)
	}
	for path, want := range map[string]any{
		"nodeRegistration.name":                      m.Name,
		"discovery.bootstrapToken.apiServerEndpoint": c.ControlPlaneEndpoint,
		"discovery.bootstrapToken.token":             testToken,
		"discovery.tlsBootstrapToken":                testToken,
		"nodeRegistration.imagePullPolicy":           "Never",
	} {
		if got := get(t, jc, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if got := get(t, jc, "discovery.bootstrapToken.caCertHashes"); !reflect.DeepEqual(got, []any{testHash}) {
		t.Errorf("caCertHashes = %v", got)
	}
	if got := kubeletArg(t, jc, "node-labels"); got != "seed.dev/pool=workers,tier=web" {
		t.Errorf("node-labels = %q", got)
	}
	if got := get(t, jc, "nodeRegistration.taints"); !reflect.DeepEqual(got, []any{map[string]any{"key": "dedicated", "value": "web", "effect": "NoExecute"}}) {
		t.Errorf("taints = %v", got)
	}
	if strings.Contains(b.Script, testToken) || strings.Contains(b.Script, "0123456789abcdef") {
		t.Error("the script contains the token")
	}
	for _, f := range b.Files {
		if f.Path != KubeadmConfigPath && bytes.Contains(f.Content, []byte(testToken)) {
			t.Errorf("%s contains the token", f.Path)
		}
	}
	for _, want := range []string{"kubeadm join --config " + KubeadmConfigPath, "rm -f " + KubeadmConfigPath} {
		if !strings.Contains(b.Script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if strings.Contains(b.Script, "kubeadm init") {
		t.Error("a worker's script runs kubeadm init")
	}
	checkSyntax(t, b.Script)
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
	}{
		{"bad version", func() error {
			c := testCluster()
			c.KubernetesVersion = "1.34"
			_, err := ControlPlane(c, Machine{Name: "cp"})
			return err
		}},
		{"endpoint without port", func() error {
			c := testCluster()
			c.ControlPlaneEndpoint = "cp"
			_, err := ControlPlane(c, Machine{Name: "cp"})
			return err
		}},
		{"CA key without certificate", func() error {
			c := testCluster()
			c.CACert = nil
			_, err := ControlPlane(c, Machine{Name: "cp"})
			return err
		}},
		{"label the kubelet may not set", func() error {
			_, err := ControlPlane(testCluster(), Machine{Name: "cp", Labels: map[string]string{"node-role.kubernetes.io/worker": ""}})
			return err
		}},
		{"control plane at another version", func() error {
			_, err := ControlPlane(testCluster(), Machine{Name: "cp", KubernetesVersion: "v1.33.6"})
			return err
		}},
		{"malformed token", func() error {
			_, err := Join(testCluster(), Machine{Name: "w"}, "abcdef0123456789abcdef", []string{testHash})
			return err
		}},
		{"no CA pin", func() error {
			_, err := Join(testCluster(), Machine{Name: "w"}, testToken, nil)
			return err
		}},
		{"bad taint effect", func() error {
			_, err := Join(testCluster(), Machine{Name: "w", Taints: []v1alpha1.Taint{{Key: "k", Effect: "Never"}}}, testToken, []string{testHash})
			return err
		}},
		{"node name with capitals", func() error {
			_, err := Join(testCluster(), Machine{Name: "Worker"}, testToken, []string{testHash})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !IsInvalid(err) {
				t.Fatalf("err = %v, want an InvalidError", err)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		tok, err := NewToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !tokenPattern.MatchString(tok) {
			t.Fatalf("token %q does not match kubeadm's format", tok)
		}
		if seen[tok] {
			t.Fatalf("token repeated: %q", tok)
		}
		seen[tok] = true
	}
	// Deterministic with a deterministic reader; bytes >= 252 are skipped.
	src := bytes.Repeat([]byte{255, 0, 1, 35, 36}, 40)
	tok, err := NewToken(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ab9aab.9aab9aab9aab9aab"; tok != want {
		t.Errorf("token = %q, want %q", tok, want)
	}
	if _, err := NewToken(bytes.NewReader([]byte{1, 2, 3})); err == nil {
		t.Error("a short reader gave a token")
	}
}

// TestScriptRuns runs the rendered scripts against stub kubeadm and kubectl
// binaries: they must succeed, leave the marker, keep the token out of the
// log, write the provider ID patch, and do nothing on a second run.
func TestScriptRuns(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	b, err := Join(testCluster(), Machine{Name: "w1"}, testToken, []string{testHash})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	// Re-root every absolute path the script uses under root.
	script := b.Script
	for _, p := range []string{"/var/lib/seed", "/var/log", "/run/containerd", "/etc/seed"} {
		script = strings.ReplaceAll(script, p, root+p)
	}
	bin := filepath.Join(root, "bin")
	mustWrite(t, filepath.Join(bin, "kubeadm"), "#!/bin/sh\necho \"kubeadm $*\"; echo \"token is $(grep -o '[a-z0-9]\\{6\\}\\.[a-z0-9]\\{16\\}' "+root+KubeadmConfigPath+" | head -1)\"\n", 0o755)
	mustWrite(t, filepath.Join(root, KubeadmConfigPath), "token: "+testToken+"\n", 0o600)
	mustWrite(t, filepath.Join(root, ProviderIDPath), "seed://docker/demo/w1\n", 0o644)
	if err := os.MkdirAll(filepath.Join(root, "run/containerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, "run/containerd/containerd.sock")
	if err := exec.Command("python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", sock).Run(); err != nil {
		t.Skipf("cannot create a unix socket stand-in: %v", err)
	}
	script = strings.Replace(script, "export PATH=", "export PATH="+bin+":", 1)
	scriptPath := filepath.Join(root, "script")
	mustWrite(t, scriptPath, script, 0o700)

	for run := 1; run <= 2; run++ {
		out, err := exec.Command("bash", scriptPath).CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		if strings.Contains(string(out), testToken) {
			t.Fatalf("run %d printed the token:\n%s", run, out)
		}
		if run == 2 && !strings.Contains(string(out), "nothing to do") {
			t.Errorf("second run did not stop at the marker:\n%s", out)
		}
	}
	logged, err := os.ReadFile(filepath.Join(root, LogPath))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logged), testToken) || !strings.Contains(string(logged), "token is <token>") {
		t.Errorf("log does not mask the token:\n%s", logged)
	}
	if _, err := os.Stat(filepath.Join(root, KubeadmConfigPath)); !os.IsNotExist(err) {
		t.Errorf("join config (with the token) still on disk: %v", err)
	}
	patch, err := os.ReadFile(filepath.Join(root, PatchesDir, "kubeletconfiguration1+merge.yaml"))
	if err != nil || string(patch) != "providerID: \"seed://docker/demo/w1\"\n" {
		t.Errorf("provider ID patch = %q, %v", patch, err)
	}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func checkSyntax(t *testing.T, script string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		return
	}
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("script does not parse: %v\n%s", err, out)
	}
}

func TestJoinControlPlane(t *testing.T) {
	c := testCluster()
	m := Machine{Name: "demo-control-plane-x7k2p", Labels: map[string]string{"seed.dev/pool": "control-plane"}}
	certs := map[string][]byte{}
	for _, name := range SharedCertificates {
		certs[name] = []byte("content of " + name)
	}
	b, err := JoinControlPlane(c, m, testToken, []string{testHash}, certs)
	if err != nil {
		t.Fatal(err)
	}
	jc := docs(t, file(t, b, KubeadmConfigPath).Content)["JoinConfiguration"]
	if jc == nil {
		t.Fatal("no JoinConfiguration")
	}
	if got, ok := jc["controlPlane"]; !ok || got == nil {
		t.Errorf("controlPlane = %v, want present: without it kubeadm joins a worker", got)
	}
	if got := get(t, jc, "nodeRegistration.taints"); !reflect.DeepEqual(got, []any{}) {
		t.Errorf("taints = %v, want [] (kubeadm reads a missing list as the control-plane taint)", got)
	}
	for _, name := range SharedCertificates {
		f := file(t, b, PKIDir+"/"+name)
		if string(f.Content) != "content of "+name {
			t.Errorf("%s = %q", name, f.Content)
		}
		if strings.HasSuffix(name, ".key") && f.Mode != 0o600 {
			t.Errorf("%s has mode %o, want 0600", name, f.Mode)
		}
	}
	if !strings.Contains(b.Script, "control-plane machine "+m.Name) {
		t.Errorf("script does not say it bootstraps a control plane:\n%s", b.Script)
	}
	// Shipped images are imported before the join: the node's DaemonSet
	// pods (kube-proxy of the cluster's version) start as it registers.
	if i, j := strings.Index(b.Script, "wait_for_imports\n"), strings.Index(b.Script, "kubeadm join"); i < 0 || i > j {
		t.Errorf("images are not imported before kubeadm join:\n%s", b.Script)
	}

	delete(certs, "etcd/ca.key")
	if _, err := JoinControlPlane(c, m, testToken, []string{testHash}, certs); !IsInvalid(err) || !strings.Contains(err.Error(), "etcd/ca.key") {
		t.Errorf("missing etcd CA key: err = %v, want an invalid error naming it", err)
	}
	certs["etcd/ca.key"] = []byte("k")
	m.KubernetesVersion = "v1.33.13"
	if _, err := JoinControlPlane(c, m, testToken, []string{testHash}, certs); !IsInvalid(err) {
		t.Errorf("a control plane at another version than the cluster's: err = %v, want invalid", err)
	}
}

func TestEtcdPinnedFor133(t *testing.T) {
	c := testCluster()
	c.KubernetesVersion = "v1.33.13"
	b, err := ControlPlane(c, Machine{Name: "cp"})
	if err != nil {
		t.Fatal(err)
	}
	cc := docs(t, file(t, b, KubeadmConfigPath).Content)["ClusterConfiguration"]
	if got := get(t, cc, "etcd.local.imageTag"); got != "3.5.35-0" {
		t.Errorf("etcd.local.imageTag = %v, want 3.5.35-0 (3.5.26 or later before a 3.6 member joins)", got)
	}
	b, err = ControlPlane(testCluster(), Machine{Name: "cp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := docs(t, file(t, b, KubeadmConfigPath).Content)["ClusterConfiguration"]["etcd"]; ok {
		t.Error("v1.34 pins etcd, want kubeadm's default")
	}
}

// TestScriptReservesAllButTheAllocatable runs a worker's script on a
// stand-in of a 4-CPU host with 2 hugepages, and wants the kubelet to
// reserve everything but what the provider asked pods be offered; a host
// too small fails the script, saying why.
func TestScriptReservesAllButTheAllocatable(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	const memTotalKiB = 8131024
	for _, tt := range []struct {
		name, version, allocatable, wantPatch, wantFailure string
	}{
		{name: "1x2Gi", allocatable: "1000 2147483648\n",
			wantPatch: fmt.Sprintf("kubeReserved:\n  cpu: \"3000m\"\n  memory: \"%d\"\n", memTotalKiB*1024-2*2048*1024-2<<30)},
		{name: "1x2Gi on v1.35, beside its failCgroupV1 patch", version: "v1.35.0", allocatable: "1000 2147483648\n",
			wantPatch: fmt.Sprintf("kubeReserved:\n  cpu: \"3000m\"\n  memory: \"%d\"\n", memTotalKiB*1024-2*2048*1024-2<<30)},
		{name: "the whole host", allocatable: fmt.Sprintf("4000 %d", memTotalKiB*1024-2*2048*1024),
			wantPatch: "kubeReserved:\n  cpu: \"0m\"\n  memory: \"0\"\n"},
		{name: "more CPUs than the host", allocatable: "5000 2147483648", wantFailure: "this host has 4 CPUs"},
		{name: "garbage", allocatable: "1x2Gi", wantFailure: "refusing allocatable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster()
			if tt.version != "" {
				c.KubernetesVersion = tt.version
			}
			b, err := Join(c, Machine{Name: "w1"}, testToken, []string{testHash})
			if err != nil {
				t.Fatal(err)
			}
			// Not t.TempDir: with the subtest's name in it, the path is
			// too long for a unix socket.
			root, err := os.MkdirTemp("", "seed-script")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(root) })
			for _, f := range b.Files {
				if strings.HasPrefix(f.Path, PatchesDir+"/") {
					mustWrite(t, filepath.Join(root, f.Path), string(f.Content), 0o644)
				}
			}
			script := b.Script
			for _, p := range []string{"/var/lib/seed", "/var/log", "/run/containerd", "/etc/seed", "/proc/meminfo", "/sys/"} {
				script = strings.ReplaceAll(script, p, root+p)
			}
			bin := filepath.Join(root, "bin")
			mustWrite(t, filepath.Join(bin, "kubeadm"), "#!/bin/sh\nexit 0\n", 0o755)
			mustWrite(t, filepath.Join(root, KubeadmConfigPath), "token: "+testToken+"\n", 0o600)
			mustWrite(t, filepath.Join(root, AllocatablePath), tt.allocatable, 0o644)
			mustWrite(t, filepath.Join(root, "proc/meminfo"), fmt.Sprintf("MemTotal:       %d kB\nMemFree:         1000 kB\n", memTotalKiB), 0o644)
			mustWrite(t, filepath.Join(root, "sys/devices/system/cpu/online"), "0-2,3\n", 0o644)
			mustWrite(t, filepath.Join(root, "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "2\n", 0o644)
			mustWrite(t, filepath.Join(root, "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"), "0\n", 0o644)
			if err := os.MkdirAll(filepath.Join(root, "run/containerd"), 0o755); err != nil {
				t.Fatal(err)
			}
			sock := filepath.Join(root, "run/containerd/containerd.sock")
			if err := exec.Command("python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", sock).Run(); err != nil {
				t.Skipf("cannot create a unix socket stand-in: %v", err)
			}
			script = strings.Replace(script, "export PATH=", "export PATH="+bin+":", 1)
			scriptPath := filepath.Join(root, "script")
			mustWrite(t, scriptPath, script, 0o700)

			out, err := exec.Command("bash", scriptPath).CombinedOutput()
			if tt.wantFailure != "" {
				if err == nil || !strings.Contains(string(out), tt.wantFailure) {
					t.Fatalf("script = %v, want a failure saying %q:\n%s", err, tt.wantFailure, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("script: %v\n%s", err, out)
			}
			patch, err := os.ReadFile(filepath.Join(root, PatchesDir, "kubeletconfiguration2+merge.yaml"))
			if err != nil || string(patch) != tt.wantPatch {
				t.Errorf("reservation patch = %q, %v; want %q", patch, err, tt.wantPatch)
			}
			if tt.version == "v1.35.0" {
				if got, err := os.ReadFile(filepath.Join(root, PatchesDir, "kubeletconfiguration0+merge.yaml")); err != nil || string(got) != "failCgroupV1: false\n" {
					t.Errorf("failCgroupV1 patch = %q, %v; want it kept", got, err)
				}
			}
		})
	}
}

// The reservation the script computes leaves no room for a memory
// eviction threshold: a memory.available in the kubelet config (or the
// kubelet's defaults, which a non-empty evictionHard keeps out) would take
// that much more from every sized machine's allocatable.
func TestKubeletConfigHasNoMemoryEvictionThreshold(t *testing.T) {
	for _, v := range []string{"v1.33.13", "v1.34.2", "v1.35.0"} {
		kc := kubeletConfig(v)
		if len(kc.EvictionHard) == 0 {
			t.Errorf("%s: evictionHard is empty, so the kubelet applies its defaults, memory.available=100Mi among them", v)
		}
		if _, ok := kc.EvictionHard["memory.available"]; ok {
			t.Errorf("%s: evictionHard sets memory.available; sized Docker machines would offer that much less than their type", v)
		}
	}
}
