package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cluster"
)

// TestLifecycle: seed up → a working single-node cluster adopted by its agent
// → seed up again changes nothing → seed down leaves nothing behind.
func TestLifecycle(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-life")
	c := framework.Up(t, name, framework.SpecYAML(name, "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cp := cluster.ControlPlaneMachineName(name)

	t.Run("node is Ready with its provider ID", func(t *testing.T) {
		framework.Eventually(t, 2*time.Minute, "node Ready", func() (bool, string) {
			n, err := c.Client.CoreV1().Nodes().Get(ctx, cp, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if want := "seed://docker/" + name + "/" + cp; n.Spec.ProviderID != want {
				return false, fmt.Sprintf("providerID %q, want %q", n.Spec.ProviderID, want)
			}
			return framework.NodeReady(n), "node not Ready"
		})
	})

	t.Run("the load balancer owns the API server endpoint", func(t *testing.T) {
		lb := name + "-lb"
		if state := framework.Docker(t, "inspect", "-f", "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}", lb); state != "running unless-stopped" {
			t.Errorf("%s: %s, want running unless-stopped", lb, state)
		}
		published := framework.Docker(t, "inspect", "-f", `{{range $p, $b := .HostConfig.PortBindings}}{{$p}}={{range $b}}{{.HostIp}}:{{.HostPort}}{{end}}{{end}}`, lb)
		host := strings.TrimPrefix(c.Config.Host, "https://")
		if published != "6443/tcp="+host {
			t.Errorf("%s publishes %q; the kubeconfig's server is %s", lb, published, c.Config.Host)
		}
		if got := framework.Docker(t, "inspect", "-f", "{{len .HostConfig.PortBindings}}", cp); got != "0" {
			t.Errorf("the control plane %s publishes %s ports, want none", cp, got)
		}
		// Every request of this test goes through it; ask once more, and
		// see it found the control plane ready.
		if _, err := c.Client.Discovery().ServerVersion(); err != nil {
			t.Fatalf("the API server through %s: %v", host, err)
		}
		if logs := framework.Docker(t, "logs", lb); !strings.Contains(logs, "Backend up") {
			t.Errorf("the load balancer never saw a ready backend:\n%s", logs)
		}
	})

	t.Run("CoreDNS is Ready", func(t *testing.T) {
		framework.Eventually(t, 3*time.Minute, "CoreDNS Ready", func() (bool, string) {
			return framework.PodsReady(ctx, c.Client, "kube-system", "k8s-app=kube-dns")
		})
	})

	// runc can die between freezing a pod's cgroup and thawing it, which
	// wedged a machine for good (CI saw one that could not be removed);
	// the node thaws a pod cgroup it finds frozen twice in a row.
	t.Run("a pod cgroup left frozen is thawed", func(t *testing.T) {
		scope := framework.Docker(t, "exec", cp, "sh", "-c",
			"find /sys/fs/cgroup/freezer/kubepods.slice /sys/fs/cgroup/kubepods.slice -name 'cri-containerd-*.scope' 2>/dev/null | head -n1")
		if scope == "" {
			t.Fatal("no pod container cgroup found on the node")
		}
		file, frozen, thawed := scope+"/cgroup.freeze", "1", "0"
		if strings.HasPrefix(scope, "/sys/fs/cgroup/freezer/") {
			file, frozen, thawed = scope+"/freezer.state", "FROZEN", "THAWED"
		}
		framework.Docker(t, "exec", cp, "sh", "-c", "echo "+frozen+" >"+file)
		framework.Eventually(t, time.Minute, "the frozen cgroup thawed", func() (bool, string) {
			got := framework.Docker(t, "exec", cp, "cat", file)
			return got == thawed, scope + ": " + got
		})
	})

	t.Run("agent is Ready and has adopted the cluster", func(t *testing.T) {
		framework.Eventually(t, 2*time.Minute, "agent Ready", func() (bool, string) {
			return framework.PodsReady(ctx, c.Client, "seed-system", "app.kubernetes.io/name=seed-agent")
		})
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(st.Machines, func(m v1alpha1.MachineStatus) bool {
			return m.Name == cp && m.Managed
		}) {
			t.Errorf("status does not list %s as managed: %+v", cp, st.Machines)
		}
	})

	t.Run("a pod runs and resolves a Service name", func(t *testing.T) {
		probe := framework.BuildProbeImage(t)
		framework.LoadImage(t, cp, probe)
		ns := "default"
		labels := map[string]string{"app": "probe"}
		_, err := c.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "probe", Image: probe, ImagePullPolicy: corev1.PullNever,
				Args:  []string{"serve", "resolve=kubernetes.default.svc.cluster.local", "resolve=probe.default.svc.cluster.local", "get=http://probe.default.svc.cluster.local:8080/"},
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "probe"},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 3*time.Minute, "the probe to resolve and reach the Service", func() (bool, string) {
			raw, err := c.Client.CoreV1().Pods(ns).GetLogs("probe", &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				return false, err.Error()
			}
			log := string(raw)
			if strings.Contains(log, " FAIL ") {
				t.Fatalf("probe failed:\n%s", log)
			}
			return strings.Count(log, " OK ") == 3, log
		})
	})

	t.Run("seed up again changes nothing", func(t *testing.T) {
		before, _, _ := framework.Owned(t, name)
		r := c.SeedUp(ctx, t)
		if r.Err != nil {
			t.Fatalf("second seed up: %v\n%s", r.Err, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "nothing changed") {
			t.Errorf("second seed up did not report that nothing changed:\n%s\n%s", r.Stdout, r.Stderr)
		}
		after, _, _ := framework.Owned(t, name)
		if !slices.Equal(before, after) {
			t.Errorf("containers changed: before %v, after %v", before, after)
		}
	})

	t.Run("seed down leaves nothing", func(t *testing.T) {
		r := framework.Seed(ctx, "down", "-f", c.SpecFile, "--kubeconfig", c.Kubeconfig)
		if r.Err != nil {
			t.Fatalf("seed down: %v\n%s", r.Err, r.Stderr)
		}
		containers, volumes, networks := framework.Owned(t, name)
		if len(containers)+len(volumes)+len(networks) > 0 {
			t.Errorf("left behind: containers %v, volumes %v, networks %v", containers, volumes, networks)
		}
		// A second down of a cluster that is gone succeeds.
		if r := framework.Seed(ctx, "down", "-f", c.SpecFile, "--kubeconfig", c.Kubeconfig); r.Err != nil {
			t.Errorf("second seed down: %v", r.Err)
		}
	})
}
