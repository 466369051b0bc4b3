package framework

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// EditSpec replaces the spec ConfigMap's document, as `kubectl edit` would,
// and returns the ConfigMap's new resourceVersion.
func (c *Cluster) EditSpec(ctx context.Context, t testing.TB, spec string) string {
	t.Helper()
	cms := c.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace)
	cm, err := cms.Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[v1alpha1.SpecKey] = spec
	out, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.ResourceVersion
}

// PoolNodes lists the pool's Nodes and how many are Ready.
func (c *Cluster) PoolNodes(ctx context.Context, pool string) (names []string, ready int, err error) {
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: providers.LabelPool + "=" + pool})
	if err != nil {
		return nil, 0, err
	}
	for i := range nodes.Items {
		names = append(names, nodes.Items[i].Name)
		if NodeReady(&nodes.Items[i]) {
			ready++
		}
	}
	return names, ready, nil
}

// PoolContainers lists the pool's machine containers.
func PoolContainers(t testing.TB, cluster, pool string) []string {
	t.Helper()
	out := Docker(t, "ps", "-a", "--format", "{{.Names}}",
		"--filter", "label="+providers.LabelCluster+"="+cluster, "--filter", "label="+providers.LabelPool+"="+pool)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// Pool renders a nodePools entry for SpecYAML.
func Pool(name string, replicas int, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    replicas: %d\n", name, replicas)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

// Pools renders the nodePools section for SpecYAML.
func Pools(pools ...string) string {
	if len(pools) == 0 {
		return "  nodePools: []\n"
	}
	return "  nodePools:\n" + strings.Join(pools, "")
}
