package scaleenv

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/pkg/testenv"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/registry"
)

// KwokBinDirEnv points at the directory holding kwok, overriding the build
// cache (hack/build-kwok.sh prints it).
const KwokBinDirEnv = "SEED_KWOK_BIN_DIR"

// DefaultKwokVersion is the kwok hack/tools/kwok pins, whose place in the
// build cache is used when KwokBinDirEnv is unset.
const DefaultKwokVersion = "v0.8.0"

//go:embed kwok/*.yaml
var kwokFiles embed.FS

// Options configure an Env.
type Options struct {
	// ClusterName is the spec's metadata.name (default "scale").
	ClusterName string
	// KubernetesVersion the machines report (default v1alpha1's).
	KubernetesVersion string
	// Spec is the cluster spec the agent finds (SetSpec changes it).
	Spec string
	// NodeLeaseDuration is how long kwok's node Leases last (default 40s,
	// a kubelet's), renewed every quarter of it; the controller-manager
	// marks a Node unknown 10s after its Lease lapses. At 5,000 Nodes the
	// renewals of 40s Leases alone are 500 writes a second.
	NodeLeaseDuration time.Duration
}

// Env is a running scale environment.
type Env struct {
	*testenv.Env
	Namespace   string
	ClusterName string
	// Self is the control-plane machine the agent runs on.
	Self string
	// Provider is a simulated provider of the same cluster, for the test
	// to look at (and to make the control plane); the agent builds its own.
	Provider providers.Provider

	t testing.TB
	// components are the scheduler, the controller-manager and kwok, for
	// Diagnose.
	components map[string]*testenv.Process
	agentBin   string
	kwokBin    string
	version    string
}

// Start runs the control plane and kwok, installs the agent's manifests
// (without its Deployment: the agent runs as a process here), makes the
// control-plane machine and builds bin/agent. Missing binaries skip t, or
// fail it under CI=true. Everything stops when t ends.
func Start(ctx context.Context, t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.ClusterName == "" {
		opts.ClusterName = "scale"
	}
	if opts.KubernetesVersion == "" {
		opts.KubernetesVersion = v1alpha1.DefaultKubernetesVersion
	}
	if opts.NodeLeaseDuration == 0 {
		opts.NodeLeaseDuration = 40 * time.Second
	}
	scheduler, err := testenv.KubeBinary("kube-scheduler")
	testenv.RequireBinaries(t, err)
	kcm, err := testenv.KubeBinary("kube-controller-manager")
	testenv.RequireBinaries(t, err)
	kwokDir := os.Getenv(KwokBinDirEnv)
	kwokBin, err := testenv.CachedBinary(kwokDir, filepath.Join("kwok", DefaultKwokVersion, "bin"), "kwok", "build-kwok.sh", KwokBinDirEnv)
	testenv.RequireBinaries(t, err)

	e := &Env{Env: testenv.Start(ctx, t), Namespace: v1alpha1.DefaultNamespace, ClusterName: opts.ClusterName,
		Self: opts.ClusterName + "-control-plane-1", t: t, kwokBin: kwokBin, version: opts.KubernetesVersion,
		components: map[string]*testenv.Process{}}
	e.agentBin = filepath.Join(e.Dir(), "agent")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.agentBin, "github.com/seedhq/seed/agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building bin/agent: %v\n%s", err, out)
	}

	e.startControllers(t, scheduler, kcm, opts.NodeLeaseDuration)
	e.startKwok(t, opts.NodeLeaseDuration)
	if err := e.install(ctx, opts.Spec); err != nil {
		t.Fatal(err)
	}
	// Built from the spec as the agent builds its own, through the registry.
	spec, err := v1alpha1.Load([]byte(opts.Spec), v1alpha1.ValidateOptions{})
	if err != nil {
		t.Fatalf("the scale spec: %v", err)
	}
	if e.Provider, err = registry.New(ctx, spec, registry.Env{Kube: e.Config}); err != nil {
		t.Fatal(err)
	}
	// The machine the agent runs on, as seed up leaves it.
	if _, err := e.Provider.CreateMachine(ctx, providers.MachineSpec{Name: e.Self, Pool: v1alpha1.ControlPlanePool,
		Role: providers.RoleControlPlane, KubernetesVersion: opts.KubernetesVersion}); err != nil {
		t.Fatalf("creating the control-plane machine: %v", err)
	}
	return e
}

func (e *Env) startControllers(t testing.TB, scheduler, kcm string, lease time.Duration) {
	t.Helper()
	ports, err := testenv.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	kc := e.KubeconfigPath
	var err2 error
	if e.components["kube-scheduler"], err2 = e.StartProcess("kube-scheduler", scheduler,
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc, "--authentication-skip-lookup",
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[0]),
		// The default 50 QPS would pace the binds of a thousand pods.
		"--kube-api-qps=500", "--kube-api-burst=1000",
	); err2 != nil {
		t.Fatal(err2)
	}
	if e.components["kube-controller-manager"], err2 = e.StartProcess("kube-controller-manager", kcm,
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc, "--authentication-skip-lookup",
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[1]),
		// The serviceaccount-token controller needs a key and nothing here
		// needs tokens (the apiserver's ServiceAccount admission is off).
		"--controllers=*,-serviceaccount-token",
		"--kube-api-qps=500", "--kube-api-burst=1000",
		"--node-monitor-grace-period="+(lease+10*time.Second).String(),
	); err2 != nil {
		t.Fatal(err2)
	}
}

// startKwok writes kwok's configuration (options and stages in one file)
// and runs it.
func (e *Env) startKwok(t testing.TB, lease time.Duration) {
	t.Helper()
	var config bytes.Buffer
	for _, name := range []string{"kwok.yaml", "node-initialize.yaml", "node-heartbeat-with-lease.yaml",
		"pod-ready.yaml", "pod-ready-again.yaml", "pod-complete.yaml", "pod-delete.yaml"} {
		data, err := kwokFiles.ReadFile("kwok/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if config.Len() > 0 {
			config.WriteString("\n---\n")
		}
		config.Write(data)
	}
	path := filepath.Join(e.Dir(), "kwok.yaml")
	if err := os.WriteFile(path, config.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := e.StartProcess("kwok", e.kwokBin, "--kubeconfig="+e.KubeconfigPath, "--config="+path,
		"--node-lease-duration-seconds="+strconv.Itoa(int(lease.Seconds())))
	if err != nil {
		t.Fatal(err)
	}
	e.components["kwok"] = p
}

// install creates what seed up leaves for the agent: its namespace, RBAC
// and spec ConfigMap, and kubeadm's
// kube-public/cluster-info, which the agent's joins read.
func (e *Env) install(ctx context.Context, spec string) error {
	objs, err := manifests.Agent(manifests.Params{Namespace: e.Namespace, AgentImage: "seed-agent:scale", SpecYAML: []byte(spec)})
	if err != nil {
		return err
	}
	keep := objs[:0]
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			keep = append(keep, o)
		}
	}
	creator, err := kube.NewCreator(e.Config)
	if err != nil {
		return err
	}
	if _, err := creator.CreateMissing(ctx, keep); err != nil {
		return fmt.Errorf("installing the agent's manifests: %w", err)
	}
	b64 := base64.StdEncoding.EncodeToString
	info := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: metav1.NamespacePublic},
		Data: map[string]string{"kubeconfig": fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: ""
  cluster:
    server: %s
    certificate-authority-data: %s
`, e.Config.Host, b64(e.Config.CAData))},
	}
	if _, err := e.Client.CoreV1().ConfigMaps(metav1.NamespacePublic).Create(ctx, info, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating kube-public/cluster-info: %w", err)
	}
	return nil
}

// SetSpec writes spec into the spec ConfigMap, as kubectl edit would.
func (e *Env) SetSpec(ctx context.Context, spec string) error {
	cms := e.Client.CoreV1().ConfigMaps(e.Namespace)
	cm, err := cms.Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the spec ConfigMap: %w", err)
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[v1alpha1.SpecKey] = spec
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the spec ConfigMap: %w", err)
	}
	return nil
}

// Agent is one bin/agent process.
type Agent struct {
	Identity string
	proc     *testenv.Process
	metrics  string
}

// StartAgent runs bin/agent as identity, with leader election, against
// the Env's API server.
func (e *Env) StartAgent(identity string, extraArgs ...string) (*Agent, error) {
	ports, err := testenv.FreePorts(1)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	args := append([]string{
		"--kubeconfig=" + e.KubeconfigPath, "--namespace=" + e.Namespace, "--self=" + e.Self,
		"--identity=" + identity, "--metrics-bind-address=" + addr, "--log-text",
	}, extraArgs...)
	p, err := e.StartProcess("agent-"+identity, e.agentBin, args...)
	if err != nil {
		return nil, err
	}
	return &Agent{Identity: identity, proc: p, metrics: "http://" + addr + "/metrics"}, nil
}

// Kill ends the agent with SIGKILL: no deferred write, no Lease released.
func (a *Agent) Kill() { a.proc.Kill() }

// Pid is the agent process's ID.
func (a *Agent) Pid() int { return a.proc.Pid() }

// Check returns an error once the agent has exited, with its last lines.
func (a *Agent) Check() error { return a.proc.Check() }

// LogTail returns the agent's last n log lines.
func (a *Agent) LogTail(n int) string { return a.proc.LogTail(n) }

// HeapProfile saves the agent's heap profile (it must run with
// --profiling) to path, for go tool pprof.
func (a *Agent) HeapProfile(ctx context.Context, path string) error {
	return a.profile(ctx, "heap", path)
}

// CPUProfile saves a profile of the agent's next d of CPU (it must run
// with --profiling) to path, for go tool pprof.
func (a *Agent) CPUProfile(ctx context.Context, d time.Duration, path string) error {
	return a.profile(ctx, fmt.Sprintf("profile?seconds=%d", max(1, int(d.Seconds()))), path)
}

func (a *Agent) profile(ctx context.Context, what, path string) error {
	url := strings.TrimSuffix(a.metrics, "/metrics") + "/debug/pprof/" + what
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reading the agent's profile %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reading the agent's profile %s: %s (is it running with --profiling?)", what, resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return fmt.Errorf("saving the agent's profile %s: %w", what, err)
	}
	return out.Close()
}

// Metrics scrapes the agent's /metrics: each sample by its name with
// labels as written ("seed_kube_requests_total{code=\"200\",...}").
func (a *Agent) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.metrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping the agent's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping the agent's metrics: %s", resp.Status)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		samples[line[:i]] = v
	}
	return samples, sc.Err()
}

// WaitMetrics waits until the agent serves /metrics.
func (a *Agent) WaitMetrics(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := a.Metrics(ctx)
		if err == nil {
			return nil
		}
		if cerr := a.Check(); cerr != nil {
			return cerr
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("the agent served no metrics in %s", timeout), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
