package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/cluster"
)

// TestPodNetwork: pods on different machines reach each other over seednet,
// first with the route backend (Docker's default), then with the vxlan
// backend the AWS provider uses, including from a machine that joins after
// the switch. With either backend, a cluster address with no rule (a
// removed Service port, a deleted Service, a pod address no node has) fails
// at once on the machine and nothing for it leaves.
func TestPodNetwork(t *testing.T) {
	const workerType = "1x2Gi"
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-net")
	spec := func(replicas int) string {
		// Sized, so that the pod network is shown working on machines
		// whose kubelet reserves most of the host, and their allocatable
		// checked where a cluster runs anyway.
		return framework.SpecYAML(name, "", framework.Pools(framework.Pool("w", replicas, "machineType: "+workerType)))
	}
	c := framework.Up(t, name, spec(2))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	probe := framework.BuildProbeImage(t)

	waitWorkers := func(t *testing.T, n int) []string {
		framework.Eventually(t, 5*time.Minute, fmt.Sprintf("%d Ready workers", n), func() (bool, string) {
			names, ready, err := c.PoolNodes(ctx, "w")
			if err != nil {
				return false, err.Error()
			}
			return ready == n, fmt.Sprintf("%d nodes %v, %d Ready", len(names), names, ready)
		})
		names, _, _ := c.PoolNodes(ctx, "w")
		return names
	}

	// servers runs a probe server on each machine and returns their pod IPs.
	servers := map[string]string{}
	serveOn := func(t *testing.T, machines ...string) {
		for _, m := range machines {
			framework.LoadImage(t, m, probe)
			pod := "server-" + m
			server := probePod(pod, m, probe, "serve")
			server.Labels = map[string]string{serverLabel: m}
			if _, err := c.Client.CoreV1().Pods("default").Create(ctx, server, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			framework.Eventually(t, 2*time.Minute, pod+" running with an IP", func() (bool, string) {
				p, err := c.Client.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				servers[m] = p.Status.PodIP
				return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", string(p.Status.Phase)
			})
		}
	}
	// reach runs a client pod on machine from that fetches every other
	// machine's server by pod IP, and fails unless all answer.
	reach := func(t *testing.T, tag, from string) {
		var args []string
		for m, ip := range servers {
			if m != from {
				args = append(args, "get=http://"+ip+":8080/")
			}
		}
		pod := fmt.Sprintf("client-%s-%s", tag, from)
		if _, err := c.Client.CoreV1().Pods("default").Create(ctx, probePod(pod, from, probe, args...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 3*time.Minute, pod+" to reach every other machine's pod", func() (bool, string) {
			raw, err := c.Client.CoreV1().Pods("default").GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				return false, err.Error()
			}
			log := string(raw)
			if strings.Contains(log, " FAIL ") {
				t.Fatalf("%s could not reach every pod:\n%s", pod, log)
			}
			return strings.Count(log, " OK ") == len(args), log
		})
	}

	cp := cluster.ControlPlaneMachineName(name)
	workers := waitWorkers(t, 2)
	all := append([]string{cp}, workers...)

	t.Run("a worker of type 1x2Gi offers pods exactly 1 CPU and 2Gi", func(t *testing.T) {
		for _, w := range workers {
			n, err := c.Client.CoreV1().Nodes().Get(ctx, w, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			a := n.Status.Allocatable
			if cpu, mem := a.Cpu().MilliValue(), a.Memory().Value(); cpu != 1000 || mem != 2<<30 {
				t.Errorf("%s: allocatable %dm CPU and %d bytes, want 1000m and %d", w, cpu, mem, 2<<30)
			}
		}
	})

	t.Run("route backend: pods reach pods on every other machine", func(t *testing.T) {
		serveOn(t, all...)
		for _, m := range all {
			reach(t, "route", m)
		}
	})

	t.Run("route backend: an address with no rule fails at once and nothing for it leaves the machine", func(t *testing.T) {
		checkClusterAddressesStayOnMachine(ctx, t, c, workers[0], probe, "route")
	})

	t.Run("vxlan backend: the switch rolls out and pods still reach each other", func(t *testing.T) {
		patch := `[{"op":"replace","path":"/spec/template/spec/containers/0/args","value":["--v=0","--backend=vxlan","--server-from=/etc/kubernetes/kubelet.conf"]}]`
		if _, err := c.Client.AppsV1().DaemonSets("kube-system").Patch(ctx, "seednet", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 3*time.Minute, "seednet rolled out on every node", func() (bool, string) {
			ds, err := c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "seednet", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			s := ds.Status
			return s.ObservedGeneration >= ds.Generation && s.UpdatedNumberScheduled == s.DesiredNumberScheduled && s.NumberAvailable == s.DesiredNumberScheduled,
				fmt.Sprintf("%+v", s)
		})
		for _, m := range all {
			// Every other node behind the device, with its route through it.
			framework.Eventually(t, time.Minute, "routes via seednet.vxlan on "+m, func() (bool, string) {
				out := framework.Docker(t, "exec", m, "ip", "-4", "route", "show", "proto", "77")
				return strings.Count(out, "dev seednet.vxlan") == len(all)-1, out
			})
			var neigh []map[string]any
			if err := json.Unmarshal([]byte(framework.Docker(t, "exec", m, "ip", "-j", "neigh", "show", "dev", "seednet.vxlan", "nud", "permanent")), &neigh); err != nil || len(neigh) != len(all)-1 {
				t.Errorf("%s: permanent neighbours on seednet.vxlan = %v (%v), want %d", m, neigh, err, len(all)-1)
			}
		}
		for _, m := range all {
			reach(t, "vxlan", m)
		}
	})

	t.Run("vxlan backend: an address with no rule fails at once and nothing for it leaves the machine", func(t *testing.T) {
		checkClusterAddressesStayOnMachine(ctx, t, c, cp, probe, "vxlan")
	})

	t.Run("vxlan backend: a machine that joins later reaches and is reached", func(t *testing.T) {
		c.EditSpec(ctx, t, spec(3))
		names := waitWorkers(t, 3)
		var added string
		for _, n := range names {
			if _, ok := servers[n]; !ok {
				added = n
			}
		}
		if added == "" {
			t.Fatalf("no new worker among %v", names)
		}
		serveOn(t, added)
		reach(t, "late", added)
		reach(t, "late", cp)
	})
}

func probePod(name, node, image string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "probe", Image: image, ImagePullPolicy: corev1.PullNever, Args: args,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
	}
}
