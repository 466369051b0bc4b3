package cluster

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/pkg/ledger"
	"github.com/seedhq/seed/pkg/plan"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/registry"
)

// Names the agent uses that the seed reads back.
const (
	controlPlaneLabel = "node-role.kubernetes.io/control-plane"
	agentSelector     = "app.kubernetes.io/name=seed-agent"
	// defaultOrphanGracePeriod is the agent's --orphan-grace-period default.
	defaultOrphanGracePeriod = 2 * time.Minute
)

// Preview is what `seed plan` prints: the plan the agent would carry out
// if the spec were applied now.
type Preview struct {
	Cluster string `json:"cluster"`
	// RunningVersion is the oldest control-plane kubelet's version, which
	// the spec was checked against, as the agent checks it.
	RunningVersion string          `json:"runningVersion,omitempty"`
	Actions        []PreviewAction `json:"actions"`
	Conditions     []PreviewCond   `json:"conditions,omitempty"`
	Pools          []PreviewPool   `json:"pools"`
	Converged      bool            `json:"converged"`
}

// PreviewAction is one planned action.
type PreviewAction struct {
	Action  string `json:"action"`
	Pool    string `json:"pool,omitempty"`
	Machine string `json:"machine,omitempty"`
	// KubernetesVersion and MachineType say what a creation makes.
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	MachineType       string `json:"machineType,omitempty"`
	Reason            string `json:"reason"`
}

// PreviewCond is a cluster-wide state of the plan.
type PreviewCond struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// PreviewPool counts one pool's machines, after the plan's decisions.
type PreviewPool struct {
	Name      string `json:"name"`
	Desired   int32  `json:"desired"`
	Current   int32  `json:"current"`
	Ready     int32  `json:"ready"`
	Updated   int32  `json:"updated"`
	Unhealthy int32  `json:"unhealthy"`
}

// PlanOptions configure PlanSpec.
type PlanOptions struct {
	Config *rest.Config
	// Spec is the proposed spec, as written.
	Spec []byte
	// NewProvider builds the provider the spec selects; registry.New when nil.
	NewProvider func(context.Context, *v1alpha1.Cluster) (providers.Provider, error)
	// Now is the time the plan is for; time.Now when zero.
	Now time.Time
}

// PlanSpec validates a proposed spec against the live cluster exactly as
// the agent does (its Load, with the oldest control-plane kubelet as the
// running version and the agent's applied spec as the previous one),
// observes what the agent observes (the provider's machines, the Nodes,
// the ledger) and runs the agent's planner. It changes nothing. A spec the
// agent would reject returns the agent's error
// (*v1alpha1.InvalidSpecError).
func PlanSpec(ctx context.Context, o PlanOptions) (*Preview, error) {
	core, err := kube.NewCore(o.Config)
	if err != nil {
		return nil, err
	}
	nodes, err := core.ListNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing Nodes: %w", err)
	}
	running := oldestControlPlane(nodes.Items)
	if running == "" {
		if running, err = core.ServerVersion(ctx); err != nil {
			return nil, fmt.Errorf("reading the API server's version: %w", err)
		}
	}
	previous, err := AppliedSpec(ctx, core)
	if err != nil {
		return nil, err
	}
	c, err := v1alpha1.Load(o.Spec, v1alpha1.ValidateOptions{RunningVersion: running, Previous: previous})
	if err != nil {
		return nil, err
	}
	newProvider := o.NewProvider
	if newProvider == nil {
		newProvider = func(ctx context.Context, c *v1alpha1.Cluster) (providers.Provider, error) {
			return registry.New(ctx, c, registry.Env{})
		}
	}
	p, err := newProvider(ctx, c)
	if err != nil {
		return nil, err
	}
	machines, err := p.ListMachines(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing machines: %w", err)
	}
	var ops []plan.Operation
	var backups plan.BackupInput
	led, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.LedgerConfigMap)
	switch {
	case err == nil:
		entries := ledger.Decode(led.Data)
		ops = ledger.Operations(entries)
		backups.Records = ledger.Backups(entries)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading the ledger %s/%s: %w", v1alpha1.DefaultNamespace, v1alpha1.LedgerConfigMap, err)
	}
	if c.Spec.Backup.Enabled {
		if err := judgedAsTheAgentLastDid(ctx, core, &backups); err != nil {
			return nil, err
		}
	}
	autoscaled, err := autoscaledAsTheAgentLastDecided(ctx, core, c)
	if err != nil {
		return nil, err
	}
	self, err := agentMachine(ctx, core)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	pl := plan.Compute(plan.Input{
		Cluster:           c,
		Machines:          machines,
		Nodes:             PlanNodes(nodes.Items),
		Self:              self,
		Now:               now,
		OrphanGracePeriod: defaultOrphanGracePeriod,
		Operations:        ops,
		Backups:           backups,
		Autoscaled:        autoscaled,
	})
	return newPreview(c.Metadata.Name, running, pl), nil
}

// judgedAsTheAgentLastDid fills in the backups' side of the plan from the
// agent's last status: whether its storage location was Available, and
// its verdict on each recorded backup. Judging Velero's objects is the
// agent's (agent/backup), which the seed does not carry; a record the
// agent has not reported yet waits.
func judgedAsTheAgentLastDid(ctx context.Context, core *kube.Core, in *plan.BackupInput) error {
	cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.StatusConfigMap)
	if apierrors.IsNotFound(err) {
		in.LocationMessage = "the agent has not reported on its backup store yet"
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the agent's status: %w", err)
	}
	var st v1alpha1.ClusterStatus
	if err := yaml.Unmarshal([]byte(cm.Data[v1alpha1.StatusKey]), &st); err != nil {
		return fmt.Errorf("decoding the agent's status: %w", err)
	}
	if c := st.Condition(v1alpha1.ConditionBackupLocationAvailable); c != nil {
		in.LocationAvailable, in.LocationMessage = c.Status == "True", c.Message
	} else {
		in.LocationMessage = "the agent has not reported on its backup store yet"
	}
	var judged []v1alpha1.BackupForChange
	if st.Backup != nil {
		judged = st.Backup.Changes
	}
	for i := range in.Records {
		rec := &in.Records[i]
		rec.Verdict = plan.BackupVerdict{Reason: "NotYetJudged", Message: "the agent has not judged backup " + rec.Name + " yet"}
		for _, j := range judged {
			if j.Change == rec.Gate && j.Backup == rec.Name {
				rec.Verdict = plan.BackupVerdict{Good: j.Good, Final: j.Final, Reason: j.Reason, Message: j.Message}
			}
		}
	}
	return nil
}

// autoscaledAsTheAgentLastDecided reads the autoscaler's side of the plan
// from the agent's last status: the machines each autoscaled pool gains
// (desired above current) and the nodes it is removing. Deciding from
// pending pods is the agent's; the preview shows what it last decided, for
// the pools the previewed spec still autoscales.
func autoscaledAsTheAgentLastDecided(ctx context.Context, core *kube.Core, c *v1alpha1.Cluster) (map[string]plan.AutoscaledPool, error) {
	if !c.Spec.AnyAutoscaled() {
		return nil, nil
	}
	cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.StatusConfigMap)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the agent's status: %w", err)
	}
	var st v1alpha1.ClusterStatus
	if err := yaml.Unmarshal([]byte(cm.Data[v1alpha1.StatusKey]), &st); err != nil {
		return nil, fmt.Errorf("decoding the agent's status: %w", err)
	}
	if st.Autoscaling == nil {
		return nil, nil
	}
	out := map[string]plan.AutoscaledPool{}
	for _, p := range st.Autoscaling.Pools {
		if p.Desired > p.Current {
			out[p.Name] = plan.AutoscaledPool{Add: int(p.Desired - p.Current), AddReason: p.Reason}
		}
	}
	for _, n := range st.Autoscaling.Nodes {
		if n.State == "Removing" {
			a := out[n.Pool]
			a.Remove = append(a.Remove, plan.Removal{Machine: n.Node, Reason: "autoscaler: node " + n.Message})
			out[n.Pool] = a
		}
	}
	return out, nil
}

func newPreview(cluster, running string, pl plan.Plan) *Preview {
	pv := &Preview{Cluster: cluster, RunningVersion: running, Actions: []PreviewAction{}, Pools: []PreviewPool{}, Converged: pl.Converged}
	for _, a := range pl.Actions {
		pa := PreviewAction{Action: string(a.Type), Pool: a.Pool, Machine: a.Machine, Reason: a.Reason}
		if a.Create != nil {
			pa.KubernetesVersion, pa.MachineType = a.Create.KubernetesVersion, a.Create.MachineType
		}
		pv.Actions = append(pv.Actions, pa)
	}
	for _, c := range pl.Conditions {
		pv.Conditions = append(pv.Conditions, PreviewCond{Type: string(c.Type), Message: c.Message})
	}
	for _, p := range pl.Pools {
		pv.Pools = append(pv.Pools, PreviewPool{Name: p.Name, Desired: p.Desired, Current: p.Current, Ready: p.Ready, Updated: p.Updated, Unhealthy: p.Unhealthy})
	}
	return pv
}

// oldestControlPlane is what the agent checks a spec against: the oldest
// kubelet among control-plane Nodes (each runs its API server at its own
// version). "" when there is none.
func oldestControlPlane(nodes []kube.Node) string {
	oldest := ""
	for _, n := range nodes {
		if _, ok := n.Labels[controlPlaneLabel]; !ok {
			continue
		}
		if v := n.Status.NodeInfo.KubeletVersion; v != "" && (oldest == "" || plan.VersionNewer(oldest, v)) {
			oldest = v
		}
	}
	return oldest
}

// PlanNodes digests Nodes into what the planner reads, as the agent does.
func PlanNodes(nodes []kube.Node) []plan.Node {
	out := make([]plan.Node, 0, len(nodes))
	for _, n := range nodes {
		pn := plan.Node{
			Name:           n.Name,
			Pool:           n.Labels[providers.LabelPool],
			Unschedulable:  n.Spec.Unschedulable,
			KubeletVersion: n.Status.NodeInfo.KubeletVersion,
		}
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" {
				pn.Ready = c.Status == "True"
				pn.Unreachable = c.Status == "Unknown"
				pn.ReadyTransition = c.LastTransitionTime.Time
			}
		}
		if pn.ReadyTransition.IsZero() {
			pn.ReadyTransition = n.CreationTimestamp.Time
		}
		out = append(out, pn)
	}
	return out
}

// agentMachine is the machine the acting agent runs on, which the planner
// never deletes: the node of the replica that last wrote the status (the
// leader), else of any agent pod.
func agentMachine(ctx context.Context, core *kube.Core) (string, error) {
	pods, err := core.ListPods(ctx, v1alpha1.DefaultNamespace, agentSelector)
	if err != nil {
		return "", fmt.Errorf("finding the agent: %w", err)
	}
	leader := ""
	if cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.StatusConfigMap); err == nil {
		var st v1alpha1.ClusterStatus
		if yaml.Unmarshal([]byte(cm.Data[v1alpha1.StatusKey]), &st) == nil {
			leader = st.Agent
		}
	}
	self := ""
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" {
			continue
		}
		if p.Name == leader {
			return p.Spec.NodeName, nil
		}
		if self == "" {
			self = p.Spec.NodeName
		}
	}
	return self, nil
}

// PrintPreview writes the preview as a table, YAML or JSON.
func PrintPreview(w io.Writer, pv *Preview, format string) error {
	if done, err := printEncoded(w, pv, format); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Cluster:\t%s (running Kubernetes %s)\n", pv.Cluster, dash(pv.RunningVersion))
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "POOL\tDESIRED\tCURRENT\tREADY\tUPDATED\tUNHEALTHY")
	for _, p := range pv.Pools {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", p.Name, p.Desired, p.Current, p.Ready, p.Updated, p.Unhealthy)
	}
	fmt.Fprintln(tw)
	if len(pv.Actions) == 0 {
		fmt.Fprintln(tw, "Plan:\tnothing to do")
	} else {
		fmt.Fprintln(tw, "ACTION\tPOOL\tMACHINE\tREASON")
		for _, a := range pv.Actions {
			machine := a.Machine
			if machine == "" && a.KubernetesVersion != "" {
				machine = "(new, " + a.KubernetesVersion + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Action, dash(a.Pool), dash(machine), a.Reason)
		}
	}
	for _, c := range pv.Conditions {
		fmt.Fprintf(tw, "%s:\t%s\n", c.Type, strings.ReplaceAll(c.Message, "\n", " "))
	}
	if pv.Converged {
		fmt.Fprintln(tw, "Converged:\tthe cluster already matches this spec")
	}
	return tw.Flush()
}
