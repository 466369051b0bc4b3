package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/seedhq/seed/e2e/framework"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// timeline collects what happened during a scenario, from every observer,
// for the log a failed or slow run is read from.
type timeline struct {
	mu     sync.Mutex
	events []timelineEvent
}

type timelineEvent struct {
	at   time.Time
	what string
}

func (tl *timeline) add(at time.Time, format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, timelineEvent{at, fmt.Sprintf(format, args...)})
}

// String renders the events in time order, relative to t0.
func (tl *timeline) String(t0 time.Time) string {
	tl.mu.Lock()
	events := slices.Clone(tl.events)
	tl.mu.Unlock()
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "%+9.3fs  %s\n", e.at.Sub(t0).Seconds(), e.what)
	}
	return b.String()
}

// follow keeps a view of the objects list returns, by listing and then
// watching from the list's resourceVersion, and calls onChange with the
// whole view after every change. A broken watch (as while the apiserver
// behind the endpoint is replaced) is followed by listing again every
// 100 ms until that works, so a change is at worst seen late, never lost
// for good; a watch is also started afresh every 30 s, in case its
// connection died without a word. It returns when ctx ends.
func follow[T runtime.Object](ctx context.Context, list func(context.Context) ([]T, string, error),
	watchFrom func(context.Context, string) (watch.Interface, error), key func(T) string, onChange func(map[string]T)) {
	var view map[string]T
	for ctx.Err() == nil {
		// Bounded calls: a request to an apiserver that went away must not
		// hang the watch for longer than that.
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		items, rv, err := list(lctx)
		lcancel()
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		view = map[string]T{}
		for _, it := range items {
			view[key(it)] = it
		}
		onChange(maps.Clone(view))
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		w, err := watchFrom(wctx, rv)
		if err != nil {
			wcancel()
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			obj, ok := ev.Object.(T)
			if !ok {
				break // a watch error (410 Gone and the like): list again
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				view[key(obj)] = obj
			case watch.Deleted:
				delete(view, key(obj))
			default:
				continue
			}
			onChange(maps.Clone(view))
		}
		w.Stop()
		wcancel()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ledgerEntry is the part of an agent ledger entry (agent/controller's
// ledgerEntry, and the replace-control-plane operation's) the tests read.
type ledgerEntry struct {
	Op                string   `json:"op"`
	Step              string   `json:"step"`
	Pool              string   `json:"pool"`
	Role              string   `json:"role"`
	KubernetesVersion string   `json:"kubernetesVersion"`
	Replaces          string   `json:"replaces"`
	Reason            string   `json:"reason"`
	BlockedBy         []string `json:"blockedBy"`
	PodsLeft          int      `json:"podsLeft"`
	LastError         string   `json:"lastError"`
	Waiting           string   `json:"waiting"`
}

func (e ledgerEntry) String() string {
	s := e.Op + "/" + e.Step
	if e.Replaces != "" {
		s += " replaces " + e.Replaces
	}
	if e.KubernetesVersion != "" {
		s += " " + e.KubernetesVersion
	}
	if len(e.BlockedBy) > 0 {
		s += fmt.Sprintf(" blockedBy %v podsLeft %d", e.BlockedBy, e.PodsLeft)
	}
	if e.Waiting != "" {
		s += " (" + e.Waiting + ")"
	}
	if e.LastError != "" {
		s += " lastError: " + e.LastError
	}
	return s
}

// ledgerWatch follows the agent's ledger ConfigMap and records every
// entry's every step, so a test sees each step the agent writes (a watch
// delivers every write, where polling could miss a short step).
type ledgerWatch struct {
	tl *timeline
	// onStep is called, on the watching goroutine, for each new or changed
	// entry; it must not block.
	onStep func(key string, e ledgerEntry)

	mu      sync.Mutex
	current map[string]ledgerEntry
	// firstSeen and gone are when each key (machine) first appeared in the
	// ledger and when it last left it.
	firstSeen, gone map[string]time.Time
	entries         map[string]ledgerEntry // last value per key, kept after removal
	steps           map[string][]string
	synced          bool
}

func newLedgerWatch(tl *timeline, onStep func(string, ledgerEntry)) *ledgerWatch {
	return &ledgerWatch{tl: tl, onStep: onStep, current: map[string]ledgerEntry{}, firstSeen: map[string]time.Time{},
		gone: map[string]time.Time{}, entries: map[string]ledgerEntry{}, steps: map[string][]string{}}
}

func (lw *ledgerWatch) run(ctx context.Context, c *framework.Cluster) {
	cms := c.Client.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace)
	selector := "metadata.name=" + v1alpha1.LedgerConfigMap
	follow(ctx, func(ctx context.Context) ([]*corev1.ConfigMap, string, error) {
		l, err := cms.List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return nil, "", err
		}
		var out []*corev1.ConfigMap
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
		return out, l.ResourceVersion, nil
	}, func(ctx context.Context, rv string) (watch.Interface, error) {
		return cms.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: rv})
	}, func(cm *corev1.ConfigMap) string { return cm.Name }, func(view map[string]*corev1.ConfigMap) {
		data := map[string]string{}
		if cm := view[v1alpha1.LedgerConfigMap]; cm != nil {
			data = cm.Data
		}
		lw.update(time.Now(), data)
	})
}

func (lw *ledgerWatch) update(now time.Time, data map[string]string) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	next := map[string]ledgerEntry{}
	for k, raw := range data {
		var e ledgerEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			lw.tl.add(now, "ledger %s: undecodable entry %q", k, raw)
			continue
		}
		next[k] = e
	}
	for k, e := range next {
		old, had := lw.current[k]
		if had && old.String() == e.String() {
			continue
		}
		if !had {
			lw.firstSeen[k] = now
		}
		lw.entries[k] = e
		if !had || old.Step != e.Step {
			lw.steps[k] = append(lw.steps[k], e.Step)
		}
		if !had && e.Reason != "" {
			lw.tl.add(now, "ledger %s: %s (reason: %s)", k, e, e.Reason)
		} else {
			lw.tl.add(now, "ledger %s: %s", k, e)
		}
		if lw.onStep != nil {
			lw.onStep(k, e)
		}
	}
	for k := range lw.current {
		if _, still := next[k]; !still {
			lw.gone[k] = now
			lw.tl.add(now, "ledger %s: done", k)
		}
	}
	lw.current = next
	lw.synced = true
}

// snapshot returns the entries in the ledger now, and whether the ledger
// was read at all.
func (lw *ledgerWatch) snapshot() (map[string]ledgerEntry, bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return maps.Clone(lw.current), lw.synced
}

// history returns, for every key ever seen: its last entry, when it first
// appeared and when it left (zero if it is still there), and its steps in
// the order they were seen.
func (lw *ledgerWatch) history() (entries map[string]ledgerEntry, firstSeen, gone map[string]time.Time, steps map[string][]string) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	steps = map[string][]string{}
	for k, v := range lw.steps {
		steps[k] = slices.Clone(v)
	}
	return maps.Clone(lw.entries), maps.Clone(lw.firstSeen), maps.Clone(lw.gone), steps
}

// machineEvent is a machine container's creation or removal, as the
// engine logged it.
type machineEvent struct {
	At      time.Time
	Action  string // create, destroy
	Name    string
	Role    string
	Version string
}

// machineEvents follows the Docker engine's event log for the cluster's
// containers: it records when each machine was created and removed (the
// engine's own timestamps), and, until stopLoading, loads the given images
// into every machine that starts, as soon as its containerd answers (what
// `seed load image` does for the machines there are). Machines created
// later must get them from the agent, which gives every new machine the
// images listed in seed-system/seed-images.
type machineEvents struct {
	tl     *timeline
	images []string

	mu      sync.Mutex
	noLoads bool
	events  []machineEvent
	loaded  map[string]time.Time
	errs    []string
}

func (me *machineEvents) run(ctx context.Context, cluster string, since time.Time) error {
	me.loaded = map[string]time.Time{}
	cmd := exec.CommandContext(ctx, "docker", "events", "--since", strconv.FormatInt(since.Unix(), 10),
		"--filter", "type=container", "--filter", "label="+providers.LabelCluster+"="+cluster, "--format", "{{json .}}")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("docker events: %w", err)
	}
	go func() {
		defer func() { _ = cmd.Wait() }()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev struct {
				Action string `json:"Action"`
				Actor  struct {
					Attributes map[string]string `json:"Attributes"`
				} `json:"Actor"`
				TimeNano int64 `json:"timeNano"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			attr := ev.Actor.Attributes
			m := machineEvent{At: time.Unix(0, ev.TimeNano), Action: ev.Action, Name: attr["name"],
				Role: attr[providers.LabelRole], Version: attr[providers.LabelVersion]}
			switch ev.Action {
			case "create", "destroy":
				me.mu.Lock()
				me.events = append(me.events, m)
				me.mu.Unlock()
				me.tl.add(m.At, "docker: %s %s (role %q, version %q)", m.Action, m.Name, m.Role, m.Version)
			case "start":
				// Only machines run containerd; a load balancer has no role.
				me.mu.Lock()
				load := !me.noLoads
				me.mu.Unlock()
				if m.Role != "" && len(me.images) > 0 && load {
					go me.load(ctx, m.Name)
				}
			}
		}
	}()
	return nil
}

// load imports the images into one machine, retrying while its containerd
// starts.
func (me *machineEvents) load(ctx context.Context, machine string) {
	deadline := time.Now().Add(3 * time.Minute)
	for _, ref := range me.images {
		for {
			err := loadImage(ctx, machine, ref)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if time.Now().After(deadline) {
				me.mu.Lock()
				me.errs = append(me.errs, fmt.Sprintf("loading %s into %s: %v", ref, machine, err))
				me.mu.Unlock()
				return
			}
			sleepCtx(ctx, time.Second)
		}
	}
	now := time.Now()
	me.mu.Lock()
	me.loaded[machine] = now
	me.mu.Unlock()
	me.tl.add(now, "test: images %v loaded into %s", me.images, machine)
}

// stopLoading leaves the machines that start from now on to the agent.
func (me *machineEvents) stopLoading() {
	me.mu.Lock()
	defer me.mu.Unlock()
	me.noLoads = true
}

// waitLoaded waits until the images are in the machine.
func (me *machineEvents) waitLoaded(t testing.TB, machine string, timeout time.Duration) {
	t.Helper()
	framework.Eventually(t, timeout, "images loaded into "+machine, func() (bool, string) {
		me.mu.Lock()
		defer me.mu.Unlock()
		_, ok := me.loaded[machine]
		return ok, strings.Join(me.errs, "; ")
	})
}

func (me *machineEvents) snapshot() (events []machineEvent, errs []string) {
	me.mu.Lock()
	defer me.mu.Unlock()
	return slices.Clone(me.events), slices.Clone(me.errs)
}

// loadImage is framework.LoadImage for goroutines: it returns the error.
func loadImage(ctx context.Context, machine, ref string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("docker save %q | docker exec -i %q ctr -n k8s.io images import --no-unpack=false -", ref, machine))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// machine is a machine container as the engine lists it.
type machine struct {
	Name, Role, Version string
	Created             time.Time
}

// machines lists the cluster's machine containers (those with a role; a
// load balancer has none).
func machines(t testing.TB, cluster string) []machine {
	t.Helper()
	ids, _, _ := framework.Owned(t, cluster)
	if len(ids) == 0 {
		return nil
	}
	format := `{{.Name}}|{{index .Config.Labels "` + providers.LabelRole + `"}}|{{index .Config.Labels "` + providers.LabelVersion + `"}}|{{.Created}}`
	// One container at a time: the agent may delete one between the list
	// and its inspection, and then it is simply no longer a machine. The
	// engine's answer says so; a second look through `docker ps` does not,
	// since the engine forgets a container being removed before its list
	// does (TestBackupGatesUpgrade once saw inspect refuse a container that
	// ps still listed).
	var lines []string
	for _, id := range ids {
		var stderr strings.Builder
		cmd := exec.Command("docker", "inspect", "--format", format, id)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if strings.Contains(stderr.String(), "No such object") || strings.Contains(stderr.String(), "No such container") {
				continue // gone
			}
			t.Fatalf("docker inspect %s: %v: %s", id, err, strings.TrimSpace(stderr.String()))
		}
		lines = append(lines, strings.TrimSpace(string(out)))
	}
	var ms []machine
	for _, line := range lines {
		f := strings.Split(line, "|")
		if len(f) != 4 || f[1] == "" {
			continue
		}
		created, err := time.Parse(time.RFC3339Nano, f[3])
		if err != nil {
			t.Fatalf("docker inspect: created %q: %v", f[3], err)
		}
		ms = append(ms, machine{Name: strings.TrimPrefix(f[0], "/"), Role: f[1], Version: f[2], Created: created})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms
}

func machinesWithRole(ms []machine, role providers.Role) []machine {
	var out []machine
	for _, m := range ms {
		if m.Role == string(role) {
			out = append(out, m)
		}
	}
	return out
}

// missingImages returns the images that are not in the machine's
// containerd.
func missingImages(ctx context.Context, machine string, refs []string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "docker", "exec", machine, "ctr", "-n", "k8s.io", "images", "ls", "-q").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("listing images on %s: %w: %s", machine, err, out)
	}
	have := strings.Fields(string(out))
	var missing []string
	for _, ref := range refs {
		if !slices.ContainsFunc(have, func(h string) bool { return h == ref || h == "docker.io/library/"+ref }) {
			missing = append(missing, ref)
		}
	}
	return missing, nil
}
