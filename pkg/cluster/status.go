package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/kube"
)

// ClientConfig returns a client config for the cluster's kubeconfig context.
func ClientConfig(kubeconfigPath, cluster string) (*rest.Config, error) {
	cfg, _, ok, err := contextConfig(kubeconfigPath, cluster)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no kubeconfig context for cluster %q in %s: run `seed kubeconfig --name %s` or `seed up`", cluster, kubeconfigPath, cluster)
	}
	return cfg, nil
}

// GetStatus reads the agent's status report from the cluster.
func GetStatus(ctx context.Context, cfg *rest.Config) (*v1alpha1.ClusterStatus, error) {
	client, err := kube.NewCore(cfg)
	if err != nil {
		return nil, err
	}
	cm, err := client.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.StatusConfigMap)
	if err != nil {
		return nil, fmt.Errorf("reading the agent's status: %w", err)
	}
	var st v1alpha1.ClusterStatus
	if err := yaml.Unmarshal([]byte(cm.Data[v1alpha1.StatusKey]), &st); err != nil {
		return nil, fmt.Errorf("decoding the agent's status: %w", err)
	}
	return &st, nil
}

// PrintStatus writes the status as a table, YAML or JSON.
func PrintStatus(w io.Writer, st *v1alpha1.ClusterStatus, format string) error {
	if done, err := printEncoded(w, st, format); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Kubernetes:\t%s\n", st.KubernetesVersion)
	fmt.Fprintf(tw, "Agent:\t%s (updated %s)\n", st.Agent, st.UpdatedAt.Format("15:04:05"))
	for _, c := range st.Conditions {
		msg := c.Message
		if msg == "" {
			msg = c.Reason
		}
		fmt.Fprintf(tw, "%s:\t%s\t%s\n", c.Type, c.Status, msg)
	}
	if st.SpecError != "" {
		fmt.Fprintf(tw, "Spec error:\t%s\n", strings.ReplaceAll(st.SpecError, "\n", "\n\t"))
	}
	if st.LastError != "" {
		fmt.Fprintf(tw, "Last error:\t%s\n", st.LastError)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "POOL\tDESIRED\tCURRENT\tREADY\tUPDATED\tUNHEALTHY")
	for _, p := range st.Pools {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", p.Name, p.Desired, p.Current, p.Ready, p.Updated, p.Unhealthy)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "MACHINE\tPOOL\tPHASE\tNODE READY\tVERSION\tMANAGED\tOPERATION\tLAST ERROR")
	for _, m := range st.Machines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%t\t%s\t%s\n", m.Name, m.Pool, m.Phase, m.NodeReady, m.KubernetesVersion,
			m.Managed, dash(m.Operation), dash(m.LastError))
	}
	if st.MachinesNotListed > 0 {
		fmt.Fprintf(tw, "(%d more machines not listed: the agent lists those that need a look once there are more than %d)\n",
			st.MachinesNotListed, v1alpha1.MaxListedMachines)
	}
	if rs := st.ControlPlaneReplacement; rs != nil {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "Control plane:\treplacing %s by %s (Kubernetes %s), since %s\n", rs.Old, rs.New, rs.KubernetesVersion, rs.StartedAt.Format("15:04:05"))
		fmt.Fprintln(tw, "STEP\tSTATE\tSINCE\tWAITING FOR")
		for _, s := range rs.Steps {
			since, why := "-", s.Waiting
			if s.Since != nil {
				since = s.Since.Format("15:04:05")
			}
			if s.LastError != "" {
				why = strings.TrimSpace(why + " (last error: " + s.LastError + ")")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.State, since, dash(why))
		}
	}
	printAutoscaling(tw, st.Autoscaling)
	if len(st.Drains) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "DRAINING\tSINCE\tPODS LEFT\tBLOCKED BY")
		for _, d := range st.Drains {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", d.Machine, d.StartedAt.Format("15:04:05"), d.PodsLeft, strings.Join(d.BlockedBy, ","))
		}
	}
	fmt.Fprintln(tw)
	if len(st.Plan) == 0 {
		fmt.Fprintln(tw, "Plan:\tnothing to do")
	} else {
		fmt.Fprintln(tw, "PLAN\tPOOL\tMACHINE\tREASON")
		for _, a := range st.Plan {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Action, a.Pool, a.Machine, a.Reason)
		}
		if st.PlanNotListed > 0 {
			fmt.Fprintf(tw, "(%d more actions)\n", st.PlanNotListed)
		}
	}
	return tw.Flush()
}

// printAutoscaling shows the autoscaler's why: each autoscaled pool's
// chosen size, what becomes of each pending pod, and why each node that
// could go stays (or when it goes).
func printAutoscaling(tw io.Writer, a *v1alpha1.AutoscalingStatus) {
	if a == nil {
		return
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "AUTOSCALED POOL\tMIN\tMAX\tCURRENT\tDESIRED\tWHY")
	for _, p := range a.Pools {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", p.Name, p.Min, p.Max, p.Current, p.Desired, dash(p.Reason))
	}
	if len(a.PendingPods) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "PENDING POD\tSINCE\tVERDICT\tWHY")
		for _, p := range a.PendingPods {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Pod, p.Since.Format("15:04:05"), p.Verdict, p.Message)
		}
		if a.PendingPodsNotListed > 0 {
			fmt.Fprintf(tw, "(%d more pending pods)\n", a.PendingPodsNotListed)
		}
	}
	if len(a.Nodes) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "NODE\tPOOL\tREQUESTED\tSTATE\tWHY")
		for _, n := range a.Nodes {
			state := n.State
			if n.Blocker != "" {
				state += " (" + n.Blocker + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d%%\t%s\t%s\n", n.Node, n.Pool, n.Utilization, state, n.Message)
		}
		if a.NodesNotListed > 0 {
			fmt.Fprintf(tw, "(%d more nodes)\n", a.NodesNotListed)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// StatusChanged reports whether next says something prev did not. The time
// of writing alone is no change: an agent rewriting the same report is not
// news.
func StatusChanged(prev, next *v1alpha1.ClusterStatus) bool {
	if prev == nil || next == nil {
		return prev != next
	}
	a, b := *prev, *next
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return !reflect.DeepEqual(a, b)
}

// WatchStatus reads the agent's status every interval until ctx ends, and
// calls show with each status that changed (the first one included). A
// failed read is reported through onError and tried again: during a
// control-plane replacement the API server is briefly away.
func WatchStatus(ctx context.Context, cfg *rest.Config, interval time.Duration,
	show func(*v1alpha1.ClusterStatus) error, onError func(error)) error {
	var last *v1alpha1.ClusterStatus
	var lastErr string
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := GetStatus(ctx, cfg)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if err.Error() != lastErr {
				onError(err)
			}
			lastErr = err.Error()
		case StatusChanged(last, st):
			lastErr = ""
			if err := show(st); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// printEncoded writes v as YAML or JSON when format asks for one, and
// reports whether it did; "" and "table" leave the table to the caller.
func printEncoded(w io.Writer, v any, format string) (done bool, err error) {
	switch format {
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = w.Write(b)
		return true, err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case "", "table":
		return false, nil
	}
	return true, fmt.Errorf("unknown output format %q: use table, yaml or json", format)
}
