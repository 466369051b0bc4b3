package scaleenv

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/ledger"
	"github.com/seedhq/seed/providers"
)

// Pool is one node pool of a scale spec.
type Pool struct {
	Name     string
	Replicas int
	// MinReplicas and MaxReplicas, when MaxReplicas is set, make the pool
	// autoscaled (Replicas is then not written).
	MinReplicas, MaxReplicas int
	MachineType              string
	Labels                   map[string]string
	Taints                   []v1alpha1.Taint
}

// Spec renders a simulated cluster's spec with the given pools.
func Spec(cluster string, registrationDelay string, pools []Pool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: %s
kind: Cluster
metadata:
  name: %s
spec:
  kubernetesVersion: %s
  provider:
    simulated:
      registrationDelay: %s
  nodePools:
`, v1alpha1.APIVersion, cluster, v1alpha1.DefaultKubernetesVersion, registrationDelay)
	for _, p := range pools {
		if p.MaxReplicas > 0 {
			fmt.Fprintf(&b, "  - name: %s\n    minReplicas: %d\n    maxReplicas: %d\n", p.Name, p.MinReplicas, p.MaxReplicas)
		} else {
			fmt.Fprintf(&b, "  - name: %s\n    replicas: %d\n", p.Name, p.Replicas)
		}
		if p.MachineType != "" {
			fmt.Fprintf(&b, "    machineType: %s\n", p.MachineType)
		}
		if len(p.Labels) > 0 {
			b.WriteString("    labels:\n")
			for _, k := range sortedKeys(p.Labels) {
				fmt.Fprintf(&b, "      %s: %q\n", k, p.Labels[k])
			}
		}
		if len(p.Taints) > 0 {
			b.WriteString("    taints:\n")
			for _, t := range p.Taints {
				fmt.Fprintf(&b, "    - {key: %s, value: %q, effect: %s}\n", t.Key, t.Value, t.Effect)
			}
		}
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Observation is the cluster as the API server has it, read independently
// of the agent's own report.
type Observation struct {
	// Machines by pool, as the provider lists them.
	Machines map[string][]providers.Machine
	// Duplicates are machine names listed more than once.
	Duplicates []string
	// NotRunning are machines not in phase Running.
	NotRunning []string
	// NotReady are machines whose Node is not Ready (or has no Node).
	NotReady []string
	// WrongRegistration are Nodes without their pool's labels or taints.
	WrongRegistration []string
	// Ledger are the machines with an operation recorded.
	Ledger []string
	// Status is the agent's last report; StatusReady its Ready condition,
	// StatusCurrent whether it reports the spec in force now.
	Status        v1alpha1.ClusterStatus
	StatusReady   bool
	StatusCurrent bool
	// StatusBytes and LedgerBytes are the sizes of the two ConfigMaps'
	// data.
	StatusBytes, LedgerBytes int
}

// Observe reads the machines, their Nodes, the ledger and the status.
func (e *Env) Observe(ctx context.Context, pools []Pool) (Observation, error) {
	o := Observation{Machines: map[string][]providers.Machine{}}
	machines, err := e.Provider.ListMachines(ctx)
	if err != nil {
		return o, err
	}
	nodes, err := e.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: providers.LabelCluster + "=" + e.ClusterName})
	if err != nil {
		return o, fmt.Errorf("listing nodes: %w", err)
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	poolOf := map[string]Pool{}
	for _, p := range pools {
		poolOf[p.Name] = p
	}
	seen := map[string]bool{}
	for _, m := range machines {
		if seen[m.Name] {
			o.Duplicates = append(o.Duplicates, m.Name)
		}
		seen[m.Name] = true
		o.Machines[m.Pool] = append(o.Machines[m.Pool], m)
		if m.Phase != providers.PhaseRunning {
			o.NotRunning = append(o.NotRunning, m.Name)
		}
		n := byName[m.Name]
		if n == nil || !ready(n) {
			o.NotReady = append(o.NotReady, m.Name)
			continue
		}
		if p, ok := poolOf[m.Pool]; ok && !registeredAs(n, p) {
			o.WrongRegistration = append(o.WrongRegistration, m.Name)
		}
	}

	cms := e.Client.CoreV1().ConfigMaps(e.Namespace)
	led, err := cms.Get(ctx, v1alpha1.LedgerConfigMap, metav1.GetOptions{})
	switch {
	case err == nil:
		for name := range ledger.Decode(led.Data) {
			o.Ledger = append(o.Ledger, name)
		}
		o.LedgerBytes = dataSize(led.Data)
	case !apierrors.IsNotFound(err):
		return o, fmt.Errorf("reading the ledger: %w", err)
	}
	st, err := cms.Get(ctx, v1alpha1.StatusConfigMap, metav1.GetOptions{})
	switch {
	case err == nil:
		o.StatusBytes = dataSize(st.Data)
		if err := yaml.Unmarshal([]byte(st.Data[v1alpha1.StatusKey]), &o.Status); err != nil {
			return o, fmt.Errorf("decoding the status: %w", err)
		}
	case !apierrors.IsNotFound(err):
		return o, fmt.Errorf("reading the status: %w", err)
	}
	spec, err := cms.Get(ctx, v1alpha1.SpecConfigMap, metav1.GetOptions{})
	if err != nil {
		return o, fmt.Errorf("reading the spec: %w", err)
	}
	o.StatusCurrent = o.Status.AppliedSpecVersion == spec.ResourceVersion
	for _, c := range o.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			o.StatusReady = c.Status == "True"
		}
	}
	return o, nil
}

// Converged says why the observation is not the spec's pools exactly,
// every machine Running and Ready, nothing in the ledger and the agent
// reporting Ready for the spec in force; "" when it is.
func (o Observation) Converged(pools []Pool) string {
	var why []string
	want := map[string]int{v1alpha1.ControlPlanePool: 1}
	for _, p := range pools {
		want[p.Name] = p.Replicas
	}
	for _, name := range sortedPools(o.Machines, want) {
		if got := len(o.Machines[name]); got != want[name] {
			why = append(why, fmt.Sprintf("pool %s has %d machines, want %d", name, got, want[name]))
		}
	}
	for _, l := range []struct {
		what  string
		names []string
	}{{"duplicate", o.Duplicates}, {"not running", o.NotRunning}, {"not Ready", o.NotReady},
		{"registered without their pool's labels or taints", o.WrongRegistration}, {"in the ledger", o.Ledger}} {
		if len(l.names) > 0 {
			why = append(why, fmt.Sprintf("%d machines %s (e.g. %s)", len(l.names), l.what, l.names[0]))
		}
	}
	if !o.StatusCurrent || !o.StatusReady {
		why = append(why, fmt.Sprintf("status not Ready for the spec in force (ready %t, current %t)", o.StatusReady, o.StatusCurrent))
	}
	return strings.Join(why, "; ")
}

func sortedPools(have map[string][]providers.Machine, want map[string]int) []string {
	set := map[string]string{}
	for k := range have {
		set[k] = k
	}
	for k := range want {
		set[k] = k
	}
	return sortedKeys(set)
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func registeredAs(n *corev1.Node, p Pool) bool {
	for k, v := range p.Labels {
		if n.Labels[k] != v {
			return false
		}
	}
	for _, t := range p.Taints {
		found := false
		for _, nt := range n.Spec.Taints {
			found = found || (nt.Key == t.Key && nt.Value == t.Value && string(nt.Effect) == t.Effect)
		}
		if !found {
			return false
		}
	}
	return true
}

func dataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}
