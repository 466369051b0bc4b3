package scaleenv

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Diagnose says what the environment's parts are doing, for a test that
// waited in vain: whether the scheduler, the controller-manager and kwok
// still run (with the end of their logs when not), the Nodes by readiness
// and taint, and the workload's pods by phase and by why they are not
// scheduled or not ready.
func (e *Env) Diagnose(ctx context.Context, workload string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(e.components)) {
		if err := e.components[name].Check(); err != nil {
			fmt.Fprintf(&b, "%s exited: %v\n", name, err)
		} else {
			fmt.Fprintf(&b, "%s running; last lines:\n%s\n", name, e.components[name].LogTail(5))
		}
	}
	nodes, err := e.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "listing nodes: %v\n", err)
	} else {
		counts := map[string]int{}
		for i := range nodes.Items {
			n := &nodes.Items[i]
			ready := "Ready=?"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					ready = "Ready=" + string(c.Status)
				}
			}
			counts[ready]++
			for _, t := range n.Spec.Taints {
				counts["taint "+t.Key+":"+string(t.Effect)]++
			}
		}
		fmt.Fprintf(&b, "nodes: %d; %s\n", len(nodes.Items), summary(counts))
	}
	pods, err := e.Client.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: "app=" + workload})
	if err != nil {
		fmt.Fprintf(&b, "listing the workload's pods: %v\n", err)
		return b.String()
	}
	counts := map[string]int{}
	for i := range pods.Items {
		p := &pods.Items[i]
		key := "phase " + string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			key += " (terminating)"
		}
		counts[key]++
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && (c.Type == corev1.PodScheduled || c.Type == corev1.PodReady) {
				msg := c.Message
				if len(msg) > 120 {
					msg = msg[:120] + "..."
				}
				counts[fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, msg)]++
			}
		}
		if p.Spec.NodeName == "" {
			counts["no node"]++
		}
	}
	fmt.Fprintf(&b, "workload %s pods: %d; %s\n", workload, len(pods.Items), summary(counts))
	return b.String()
}

func summary(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}
