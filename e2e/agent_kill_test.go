package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// agentProcess is the agent container of the pod that holds the agent's
// Lease, and its process on the node that runs it.
type agentProcess struct {
	Pod         string
	Node        string
	ContainerID string
	PID         int
	Restarts    int32
}

func (a agentProcess) String() string {
	return fmt.Sprintf("agent leader %s (pid %d on %s, %d restarts)", a.Pod, a.PID, a.Node, a.Restarts)
}

// findAgentLeader finds the leading agent's process: the Lease names the
// pod (holderIdentity is the pod's name), the pod's status its container,
// and the node's containerd (ctr task ls) the container's PID, as seen
// from the node's PID namespace.
func findAgentLeader(ctx context.Context, c *framework.Cluster) (agentProcess, error) {
	lease, err := c.Client.CoordinationV1().Leases(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LeaseName, metav1.GetOptions{})
	if err != nil {
		return agentProcess{}, fmt.Errorf("reading the agent's lease: %w", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return agentProcess{}, errors.New("no agent holds the lease")
	}
	pod, err := c.Client.CoreV1().Pods(v1alpha1.DefaultNamespace).Get(ctx, *lease.Spec.HolderIdentity, metav1.GetOptions{})
	if err != nil {
		return agentProcess{}, fmt.Errorf("reading the leader's pod: %w", err)
	}
	a := agentProcess{Pod: pod.Name, Node: pod.Spec.NodeName}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == "agent" && s.State.Running != nil {
			_, a.ContainerID, _ = strings.Cut(s.ContainerID, "://")
			a.Restarts = s.RestartCount
		}
	}
	if a.ContainerID == "" || a.Node == "" {
		return a, fmt.Errorf("the leader's pod %s has no running agent container", pod.Name)
	}
	out, err := exec.CommandContext(ctx, "docker", "exec", a.Node, "ctr", "-n", "k8s.io", "task", "ls").CombinedOutput()
	if err != nil {
		return a, fmt.Errorf("listing containerd tasks on %s: %w: %s", a.Node, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == a.ContainerID && f[2] == "RUNNING" {
			a.PID, err = strconv.Atoi(f[1])
			if err != nil {
				return a, fmt.Errorf("ctr task ls: pid %q: %w", f[1], err)
			}
			return a, nil
		}
	}
	return a, fmt.Errorf("no running task %s on %s:\n%s", a.ContainerID, a.Node, out)
}

// kill sends SIGKILL to the agent's process inside its node: a real
// kill -9, no graceful stop, no release of the Lease; the kubelet restarts
// the container in the same pod.
func (a agentProcess) kill(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "docker", "exec", a.Node, "sh", "-c", "kill -9 "+strconv.Itoa(a.PID)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kill -9 %d on %s: %w: %s", a.PID, a.Node, err, out)
	}
	return nil
}

// killAgentLeader finds the leader and kills it, retrying for up to
// within while no live leader can be found (the API or the leader may be
// moving).
func killAgentLeader(ctx context.Context, c *framework.Cluster, within time.Duration) (agentProcess, error) {
	deadline := time.Now().Add(within)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		a, err := findAgentLeader(actx, c)
		if err == nil {
			err = a.kill(actx)
		}
		cancel()
		if err == nil {
			return a, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return a, err
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// waitAgentResumed waits until the killed agent has come back: its
// container restarted (or, were its pod gone with its node, another pod
// runs), and an agent whose pod is Ready holds the Lease and has renewed
// it since the kill.
func waitAgentResumed(ctx context.Context, c *framework.Cluster, killed agentProcess, at time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = agentResumed(rctx, c, killed, at)
		cancel()
		if last == "" {
			return nil
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	return fmt.Errorf("the agent did not resume within %s after the kill of %s: %s", timeout, killed, last)
}

// agentResumed returns what is still missing, or "".
func agentResumed(ctx context.Context, c *framework.Cluster, killed agentProcess, at time.Time) string {
	pods := c.Client.CoreV1().Pods(v1alpha1.DefaultNamespace)
	pod, err := pods.Get(ctx, killed.Pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// Gone with its node: the Deployment's other pods carry on.
	case err != nil:
		return err.Error()
	default:
		restarted := false
		for _, s := range pod.Status.ContainerStatuses {
			if s.Name == "agent" && s.RestartCount > killed.Restarts {
				restarted = true
			}
		}
		if !restarted && pod.DeletionTimestamp == nil {
			return fmt.Sprintf("pod %s: the agent container has not restarted", pod.Name)
		}
	}
	lease, err := c.Client.CoordinationV1().Leases(v1alpha1.DefaultNamespace).Get(ctx, v1alpha1.LeaseName, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	if lease.Spec.HolderIdentity == nil || lease.Spec.RenewTime == nil || !lease.Spec.RenewTime.After(at) {
		return "the lease has not been renewed since the kill"
	}
	holder, err := pods.Get(ctx, *lease.Spec.HolderIdentity, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("lease holder %s: %v", *lease.Spec.HolderIdentity, err)
	}
	if !podReady(holder) {
		return fmt.Sprintf("lease holder %s is not Ready", holder.Name)
	}
	for _, s := range holder.Status.ContainerStatuses {
		if s.Name == "agent" && (s.State.Running == nil || s.State.Running.StartedAt.Time.Before(at.Add(-time.Second)) && holder.Name == killed.Pod) {
			return fmt.Sprintf("lease holder %s: agent container not running since the kill", holder.Name)
		}
	}
	return ""
}

// TestAgentLeaderKilledWithSIGKILLResumesAndDisturbsNothing kills the
// leading agent's process with kill -9 inside its node, three times, under
// the disruption workload: each time the kubelet restarts the container,
// an agent leads again and acts on the next edit, and no request to the
// workload or the API fails.
func TestAgentLeaderKilledWithSIGKILLResumesAndDisturbsNothing(t *testing.T) {
	framework.Require(t)
	framework.Parallel(t)
	name := framework.NewName("e2e-kill")
	spec := func(n int) string {
		return framework.SpecYAML(name, "", "  rollout: {maxSurge: 1, maxUnavailable: 0}\n"+framework.Pools(framework.Pool("workers", n)))
	}
	d := startDisruption(t, name, spec(2), 2, nil)
	ctx, cancel := context.WithTimeout(d.ctx, 15*time.Minute)
	defer cancel()
	d.quiet(5 * time.Second)

	t0 := time.Now()
	for i := range 3 {
		at := time.Now()
		a, err := killAgentLeader(ctx, d.c, 30*time.Second)
		if err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
		d.tl.add(at, "test: kill -9 %s", a)
		if err := waitAgentResumed(ctx, d.c, a, at, 2*time.Minute); err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
		d.tl.add(time.Now(), "test: agent resumed")
		t.Logf("kill %d: %s; resumed after %s", i+1, a, time.Since(at).Round(100*time.Millisecond))
	}
	// An agent that leads again acts on an edit.
	d.c.EditSpec(ctx, t, spec(3))
	d.tl.add(time.Now(), "test: spec edited to 3 workers")
	framework.Eventually(t, 5*time.Minute, "3 Ready workers", func() (bool, string) {
		names, ready, err := d.c.PoolNodes(ctx, "workers")
		return err == nil && ready == 3, fmt.Sprintf("%v (%d Ready) %v", names, ready, err)
	})
	framework.Eventually(t, time.Minute, "the ledger empty", func() (bool, string) {
		l, _ := d.ledger.snapshot()
		return len(l) == 0, fmt.Sprint(l)
	})
	f := d.figures(ctx)
	d.log(f, t0)
	d.check(f)
	d.checkImages(ctx)
	if f.API.Failed > 0 || f.InCluster.Failed > 0 {
		t.Errorf("the API failed %d times through the external endpoint and %d times in-cluster: an agent's death must not touch it", f.API.Failed, f.InCluster.Failed)
	}
}
