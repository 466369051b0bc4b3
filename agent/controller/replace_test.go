package controller

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/agent/etcd"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
)

const (
	fromVersion = "v1.33.13"
	toVersion   = "v1.34.2"
)

// fakeEtcd is the cluster's etcd membership: a control plane's member
// joins as a learner and is promoted, as kubeadm join does.
type fakeEtcd struct {
	mu      sync.Mutex
	members []etcd.Member
	leader  uint64
	nextID  uint64
	removed []string
	// removing, when set, is called as a member is removed.
	removing func(name string)
}

func (f *fakeEtcd) join(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.Name == name {
			return
		}
	}
	f.nextID++
	f.members = append(f.members, etcd.Member{ID: f.nextID, Name: name, ClientURLs: []string{"https://" + name + ":2379"}})
	if f.leader == 0 {
		f.leader = f.nextID
	}
}

func (f *fakeEtcd) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.members {
		out = append(out, m.Name)
	}
	return out
}

func (f *fakeEtcd) Members(context.Context, []string) ([]etcd.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members), nil
}

func (f *fakeEtcd) RemoveMember(_ context.Context, _ []string, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.members {
		if m.ID == id {
			if id == f.leader {
				return fmt.Errorf("removing the leader %s: the test expects the leadership moved first", m.Name)
			}
			if f.removing != nil {
				f.removing(m.Name)
			}
			f.removed = append(f.removed, m.Name)
			f.members = slices.Delete(f.members, i, i+1)
		}
	}
	return nil
}

func (f *fakeEtcd) Status(context.Context, string) (etcd.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return etcd.Status{Version: "3.5.35", Leader: f.leader}, nil
}

func (f *fakeEtcd) MoveLeader(_ context.Context, _ string, to uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = to
	return nil
}

// upgradeWorld is a v1.33 cluster of one control plane (the agent's) and
// one worker, with what an upgrade touches: the kubeadm configuration,
// static pods, etcd, kube-proxy, and the agent's own pods, which a
// Deployment stand-in keeps at two on schedulable control-plane Nodes.
type upgradeWorld struct {
	*harness
	etcd *fakeEtcd
	pki  string

	mu     sync.Mutex
	images [][]string // Images of every control-plane machine asked for
	// addrs are the control planes' addresses, and stopped when the
	// kubelet stopped each one's API server.
	addrs   map[string]string
	stopped map[string]time.Time
}

// shutdownDelay stands in for bootstrap.APIServerShutdownDelay: how long a
// stopped API server goes on answering.
const shutdownDelay = time.Second

func newUpgradeWorld(t *testing.T) *upgradeWorld {
	spec := strings.ReplaceAll(specYAML(1), "v1.34.2", fromVersion)
	h := newHarness(t, spec)
	w := &upgradeWorld{harness: h, etcd: &fakeEtcd{}, pki: t.TempDir(), addrs: map[string]string{}, stopped: map[string]time.Time{}}
	w.etcd.removing = func(name string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.stopped[name]; ok && w.answers(name) {
			t.Errorf("etcd member %s removed while its stopped API server still answers", name)
		}
	}
	ctx := context.Background()

	// The seed's machine, at the old version.
	h.provider.Remove(h.self())
	_ = h.admin.CoreV1().Nodes().Delete(ctx, h.self(), metav1.DeleteOptions{})
	h.provider.Add(providers.Machine{Name: h.self(), Pool: v1alpha1.ControlPlanePool, Role: providers.RoleControlPlane,
		KubernetesVersion: fromVersion, CreatedAt: time.Now().Add(-time.Hour)})
	w.registerControlPlane(h.self(), fromVersion)
	h.provider.OnCreate = func(m providers.Machine) {
		if m.Role == providers.RoleControlPlane {
			w.registerControlPlane(m.Name, m.KubernetesVersion)
			return
		}
		h.registerNode(m.Name, m.Pool, true)
	}

	cms := h.admin.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	_ = cms.Delete(ctx, "kubeadm-config", metav1.DeleteOptions{})
	cc := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: " + fromVersion +
		"\netcd:\n  local:\n    imageTag: 3.5.35-0\n    dataDir: /var/lib/etcd\n"
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config"},
		Data: map[string]string{"ClusterConfiguration": cc}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := h.admin.AppsV1().DaemonSets(metav1.NamespaceSystem)
	_ = ds.Delete(ctx, "kube-proxy", metav1.DeleteOptions{})
	labels := map[string]string{"k8s-app": "kube-proxy"}
	if _, err := ds.Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:" + fromVersion}}}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ds.Delete(context.Background(), "kube-proxy", metav1.DeleteOptions{})
		_ = cms.Delete(context.Background(), "kubeadm-config", metav1.DeleteOptions{})
	})
	go w.agentDeployment(t.Context())
	go w.staticPodKubelet(t.Context())
	return w
}

// registerControlPlane is what kubeadm init or join leaves: a Ready Node
// labelled as a control plane, its static pods Ready, its etcd member.
func (w *upgradeWorld) registerControlPlane(name, version string) {
	ctx := context.Background()
	w.registerNode(name, v1alpha1.ControlPlanePool, true)
	node, err := w.admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		w.t.Errorf("%v", err)
		return
	}
	node.Labels[controlPlaneLabel] = ""
	if node, err = w.admin.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		w.t.Errorf("%v", err)
		return
	}
	node.Status.NodeInfo.KubeletVersion = version
	w.mu.Lock()
	addr, ok := w.addrs[name]
	if !ok {
		// TEST-NET-1: never dialled, DialAPIServer answers for it.
		addr = fmt.Sprintf("192.0.2.%d", len(w.addrs)+1)
		w.addrs[name] = addr
	}
	w.mu.Unlock()
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
	if _, err := w.admin.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		w.t.Errorf("%v", err)
	}
	for _, c := range controlPlaneStaticPods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c + "-" + name, Namespace: metav1.NamespaceSystem,
			Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "x"}},
			Spec: corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: c, Image: "registry.k8s.io/" + c + ":" + version}}}}
		created, err := w.admin.CoreV1().Pods(metav1.NamespaceSystem).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			w.t.Errorf("%v", err)
			continue
		}
		created.Status.Phase = corev1.PodRunning
		created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := w.admin.CoreV1().Pods(metav1.NamespaceSystem).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			w.t.Errorf("%v", err)
		}
		w.t.Cleanup(func() {
			_ = w.admin.CoreV1().Pods(metav1.NamespaceSystem).Delete(context.Background(), pod.Name, metav1.DeleteOptions{})
		})
	}
	w.etcd.join(name)
	dir := w.manifests(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kube-apiserver.yaml"), []byte("kind: Pod\n"), 0o600); err != nil {
		w.t.Error(err)
	}
}

// manifests is the kubelet's static pod directory of a control plane.
func (w *upgradeWorld) manifests(node string) string { return filepath.Join(w.pki, node, "manifests") }

// staticPodKubelet stops an API server whose manifest left the directory,
// as the kubelet does: its mirror pod goes.
func (w *upgradeWorld) staticPodKubelet(ctx context.Context) {
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		entries, _ := os.ReadDir(w.pki)
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(w.manifests(e.Name()), "kube-apiserver.yaml")); errors.Is(err, fs.ErrNotExist) {
				w.mu.Lock()
				if _, ok := w.stopped[e.Name()]; !ok {
					w.stopped[e.Name()] = time.Now()
				}
				w.mu.Unlock()
				zero := int64(0)
				_ = w.admin.CoreV1().Pods(metav1.NamespaceSystem).Delete(ctx, "kube-apiserver-"+e.Name(), metav1.DeleteOptions{GracePeriodSeconds: &zero})
			}
		}
	}
}

// answers reports whether a control plane's API server accepts
// connections: until shutdownDelay after the kubelet stopped it. w.mu is held.
func (w *upgradeWorld) answers(name string) bool {
	stopped, ok := w.stopped[name]
	return !ok || time.Since(stopped) < shutdownDelay
}

// dialAPIServer is the agents' Options.DialAPIServer.
func (w *upgradeWorld) dialAPIServer(_ context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, a := range w.addrs {
		if a == host && w.answers(name) {
			return nil
		}
	}
	return syscall.ECONNREFUSED
}

// agentDeployment keeps two agent pods, as the Deployment controller and
// the scheduler would: a missing one is created on a schedulable
// control-plane Node and is Ready at once.
func (w *upgradeWorld) agentDeployment(ctx context.Context) {
	n := 0
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		pods, err := w.admin.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: agentSelector.String()})
		if err != nil {
			continue
		}
		live := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				live++
			}
		}
		nodes, err := w.admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: controlPlaneLabel + ",seed.dev/test-namespace=" + w.ns})
		if err != nil {
			continue
		}
		var target string
		for _, node := range nodes.Items {
			if !node.Spec.Unschedulable && nodeReady(&node) {
				target = node.Name
			}
		}
		for ; live < 2 && target != ""; live++ {
			n++
			w.runPod(fmt.Sprintf("seed-agent-%d", n), target, map[string]string{"app.kubernetes.io/name": "seed-agent"})
		}
	}
}

// agentPod is a live agent pod's name and node, other than those in skip.
func (w *upgradeWorld) agentPod(skip ...string) (name, node string) {
	pods, err := w.admin.CoreV1().Pods(w.ns).List(context.Background(), metav1.ListOptions{LabelSelector: agentSelector.String()})
	if err != nil {
		return "", ""
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && !slices.Contains(skip, p.Name) {
			return p.Name, p.Spec.NodeName
		}
	}
	return "", ""
}

func (w *upgradeWorld) reconciler(pod, node string) *Reconciler {
	return w.newReconciler(pod, func(o *Options) {
		o.Self, o.Etcd, o.ManifestsDir = node, w.etcd, w.manifests(node)
		o.DialAPIServer = w.dialAPIServer
		o.Bootstrapper = BootstrapperFunc(func(_ context.Context, _ *v1alpha1.Cluster, m providers.MachineSpec) (providers.Bootstrap, error) {
			if m.Role == providers.RoleControlPlane {
				w.mu.Lock()
				w.images = append(w.images, m.Images)
				w.mu.Unlock()
			}
			return providers.Bootstrap{Script: "kubeadm join # " + m.Name}, nil
		})
	})
}

// runAgents plays the agent's pods: the agent of one pod runs until its pod
// is evicted (a handover) or kill says so (kill -9: the same pod's agent
// starts again); then the agent of a live pod takes over. It returns when
// the cluster is upgraded or the time is up.
func (w *upgradeWorld) runAgents(kill func([]recordedStep) bool, done func() bool) (kills int) {
	deadline := time.Now().Add(90 * time.Second)
	pod, node := "", ""
	for time.Now().Before(deadline) && !done() {
		if pod == "" {
			pod, node = w.agentPod()
			if pod == "" {
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := w.reconciler(pod, node)
		r.opts.Resign = cancel
		killed := make(chan struct{}, 1)
		r.stepRecorded = func(_ context.Context, rec []recordedStep) {
			if kill(rec) {
				select {
				case killed <- struct{}{}:
				default:
				}
				cancel()
			}
		}
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			// Stopped while starting (evicted, killed) is no failure.
			if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				w.t.Errorf("agent %s: %v", r.opts.Identity, err)
			}
		}()
		for ctx.Err() == nil && !done() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			if p, err := w.admin.CoreV1().Pods(w.ns).Get(ctx, pod, metav1.GetOptions{}); apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil) {
				cancel() // SIGTERM: the pod was evicted
				pod = ""
			}
		}
		cancel()
		<-stopped
		select {
		case <-killed:
			kills++
		default:
		}
	}
	return kills
}

func (w *upgradeWorld) upgraded() bool {
	if len(w.ledgerEntries()) > 0 {
		return false
	}
	for _, m := range w.provider.Machines() {
		if m.KubernetesVersion != toVersion {
			return false
		}
	}
	ds, err := w.admin.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(context.Background(), "kube-proxy", metav1.GetOptions{})
	return err == nil && ds.Spec.Template.Spec.Containers[0].Image == "registry.k8s.io/kube-proxy:"+toVersion
}

// check asserts what an upgrade leaves: every machine at the new version,
// one control plane, one etcd member (the new one's), no stale Node, the
// old Node gone, the kubeadm configuration raised with etcd's pin dropped.
func (w *upgradeWorld) check(t *testing.T) {
	t.Helper()
	var cps []string
	for _, m := range w.provider.Machines() {
		if m.KubernetesVersion != toVersion {
			t.Errorf("machine %s runs %s, want %s", m.Name, m.KubernetesVersion, toVersion)
		}
		if m.Role == providers.RoleControlPlane {
			cps = append(cps, m.Name)
		}
	}
	if len(cps) != 1 || cps[0] == w.self() {
		t.Fatalf("control-plane machines %v, want one new one", cps)
	}
	if got := w.etcd.names(); !slices.Equal(got, cps) {
		t.Errorf("etcd members %v, want only %v", got, cps)
	}
	if removed := w.etcd.removed; !slices.Equal(removed, []string{w.self()}) {
		t.Errorf("etcd members removed %v, want the old control plane's once", removed)
	}
	if _, err := w.admin.CoreV1().Nodes().Get(context.Background(), w.self(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old control plane's Node is still there (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(w.manifests(w.self()), ".kube-apiserver.yaml"+stoppedSuffix)); err != nil {
		t.Errorf("the old control plane's API server was not stopped before its etcd member went: %v", err)
	}
	if got := w.provider.Endpoint(); got != cps[0] {
		t.Errorf("the endpoint is on %q, want the new control plane %s", got, cps[0])
	}
	nodes, _ := w.admin.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: "seed.dev/test-namespace=" + w.ns})
	if len(nodes.Items) != len(w.provider.Machines()) {
		t.Errorf("%d Nodes for %d machines", len(nodes.Items), len(w.provider.Machines()))
	}
	cm, err := w.admin.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(context.Background(), "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cc map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		t.Fatal(err)
	}
	if cc["kubernetesVersion"] != toVersion || strings.Contains(cm.Data["ClusterConfiguration"], "imageTag") ||
		!strings.Contains(cm.Data["ClusterConfiguration"], "dataDir: /var/lib/etcd") {
		t.Errorf("kubeadm ClusterConfiguration after the upgrade:\n%s\nwant %s, etcd's pin dropped, the rest kept", cm.Data["ClusterConfiguration"], toVersion)
	}
	if !strings.Contains(cm.Data["ClusterConfiguration"], "name: shutdown-delay-duration") {
		t.Errorf("kubeadm ClusterConfiguration after the upgrade:\n%s\nwant the API server's shutdown delay added", cm.Data["ClusterConfiguration"])
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, imgs := range w.images {
		if !slices.Contains(imgs, "registry.k8s.io/kube-proxy:"+fromVersion) || !slices.Contains(imgs, "seed-agent:test") {
			t.Errorf("a new control plane was asked for with images %v; want the running kube-proxy and the agent's", imgs)
		}
	}
}

// One edit of spec.kubernetesVersion upgrades the control plane (replacing
// the machine the agent runs on), then the workers, then kube-proxy, with
// the agent killed between every pair of steps of the replacement.
func TestUpgradeResumesAfterAKillBetweenEveryPairOfSteps(t *testing.T) {
	for _, step := range append([]plan.Step{""}, plan.ReplaceSteps...) {
		name := "no kill"
		if step != "" {
			name = "killed at " + string(step)
		}
		t.Run(name, func(t *testing.T) {
			w := newUpgradeWorld(t)
			// The worker and a workload on the old control plane.
			stop := w.startAgent("settle", func(o *Options) { o.Etcd = w.etcd })
			eventually(t, 20*time.Second, "1 worker", func() bool { return len(w.workers("workers")) == 1 })
			eventually(t, 10*time.Second, "the ledger to empty", func() bool { return len(w.ledgerEntries()) == 0 })
			stop()
			w.runPod("web", w.self(), map[string]string{"app": "web"})

			w.setSpec(specYAML(1))
			hit := false
			kills := w.runAgents(func(rec []recordedStep) bool {
				if step == "" || hit {
					return false
				}
				hit = slices.ContainsFunc(rec, func(s recordedStep) bool { return s.Op == plan.OpReplaceControlPlane && s.Step == step })
				return hit
			}, w.upgraded)
			if !w.upgraded() {
				t.Fatalf("not upgraded: ledger %v, machines %+v", w.ledgerEntries(), w.provider.Machines())
			}
			if step != "" && kills != 1 {
				t.Errorf("the agent was killed %d times at %s, want once", kills, step)
			}
			w.check(t)
			if _, err := w.admin.CoreV1().Pods(w.ns).Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the workload on the old control plane was not drained (err %v)", err)
			}
		})
	}
}

// A new control plane that never becomes healthy is rolled back after
// nodeStartupTimeout: its machine, Node and etcd member go, the old control
// plane keeps working, and a fresh replacement is tried.
func TestReplacementRollsBackAJoinThatNeverBecomesHealthy(t *testing.T) {
	w := newUpgradeWorld(t)
	var mu sync.Mutex
	var asked []string
	w.provider.OnCreate = func(m providers.Machine) {
		if m.Role == providers.RoleControlPlane {
			mu.Lock()
			asked = append(asked, m.Name)
			mu.Unlock()
			w.registerNode(m.Name, v1alpha1.ControlPlanePool, false) // kubeadm join never finishes
			w.etcd.join(m.Name)
			w.etcd.mu.Lock()
			w.etcd.members[len(w.etcd.members)-1].IsLearner = true
			w.etcd.mu.Unlock()
			return
		}
		w.registerNode(m.Name, m.Pool, true)
	}
	w.setSpec(strings.ReplaceAll(specYAML(1), "docker: {}", "docker: {}\n  health:\n    nodeStartupTimeout: 3s"))
	pod, node := "", ""
	eventually(t, 10*time.Second, "an agent pod", func() bool { pod, node = w.agentPod(); return pod != "" })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := w.reconciler(pod, node)
	go func() { _ = r.Run(ctx) }()

	eventually(t, 30*time.Second, "a rollback", func() bool { return len(w.events("ControlPlaneReplacementRolledBack")) > 0 })
	mu.Lock()
	first := asked[0]
	mu.Unlock()
	if slices.ContainsFunc(w.provider.Machines(), func(m providers.Machine) bool { return m.Name == first }) {
		t.Errorf("machine %s is still there after the rollback", first)
	}
	if slices.Contains(w.etcd.names(), first) {
		t.Errorf("etcd member %s is still there after the rollback", first)
	}
	if _, err := w.admin.CoreV1().Nodes().Get(context.Background(), first, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node %s is still there after the rollback (err %v)", first, err)
	}
	if ev := w.events("ControlPlaneJoinFailed"); len(ev) == 0 || !strings.Contains(ev[0].Message, "nodeStartupTimeout 3s") {
		t.Errorf("events %v, want one saying the join timed out", ev)
	}
	n, err := w.admin.CoreV1().Nodes().Get(context.Background(), w.self(), metav1.GetOptions{})
	if err != nil || n.Spec.Unschedulable {
		t.Errorf("the old control plane's Node after the rollback: %v, unschedulable %t; want it in service", err, n != nil && n.Spec.Unschedulable)
	}
	eventually(t, 15*time.Second, "a second attempt", func() bool { mu.Lock(); defer mu.Unlock(); return len(asked) >= 2 })
}
