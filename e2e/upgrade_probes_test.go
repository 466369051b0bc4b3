package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/e2e/framework"
)

// gapMeter keeps the figures of a probe that runs every tick: how many
// probes failed, and the longest time between two successes.
type gapMeter struct {
	mu           sync.Mutex
	ok, failed   int
	notReady     int // /readyz answers that said not ready
	lastOK       time.Time
	longest      time.Duration
	longestAt    time.Time
	failures     []string // the first few, for the log
	lastFailures []string // and the latest few
}

func (g *gapMeter) record(now time.Time, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.failed++
		msg := now.Format("15:04:05.000") + " " + err.Error()
		if len(g.failures) < 10 {
			g.failures = append(g.failures, msg)
		} else {
			g.lastFailures = append(g.lastFailures, msg)
			if len(g.lastFailures) > 5 {
				g.lastFailures = g.lastFailures[1:]
			}
		}
		return
	}
	if !g.lastOK.IsZero() {
		if gap := now.Sub(g.lastOK); gap > g.longest {
			g.longest, g.longestAt = gap, g.lastOK
		}
	}
	g.lastOK = now
	g.ok++
}

// notReadyAnswer counts a /readyz that said not ready: no failure.
func (g *gapMeter) notReadyAnswer() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.notReady++
}

type gapFigures struct {
	OK, Failed int
	NotReady   int
	Longest    time.Duration
	LongestAt  time.Time
	Failures   []string
}

func (g *gapMeter) figures() gapFigures {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gapFigures{OK: g.ok, Failed: g.failed, NotReady: g.notReady, Longest: g.longest, LongestAt: g.longestAt,
		Failures: append(slices.Clone(g.failures), g.lastFailures...)}
}

// every runs f every interval (skipping ticks f overruns) until ctx ends.
func every(ctx context.Context, interval time.Duration, f func(now time.Time)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			f(now)
		}
	}
}

// lbNodes is the set of nodes a cloud load balancer in front of a NodePort
// Service would send to: Ready, schedulable (a node being drained is
// cordoned first, and taken out of rotation, as the service controller
// does), and passing kube-proxy's health check (GET :10256/healthz, what
// cloud load balancers check for externalTrafficPolicy Cluster) three
// times in a row, a second apart, as a load balancer's healthy threshold
// asks (cloud defaults are slower still). One pass is not enough: a new
// node's kube-proxy answers 200 before its first sync has written the
// NodePort rules, and a request sent then is refused. A failed check
// takes a node out at once. The Node list is read every second; the
// health checks go on from the last list while the API does not answer,
// so a machine removed then leaves rotation anyway.
type lbNodes struct {
	tl *timeline

	mu      sync.Mutex
	nodes   []corev1.Node
	healthy []string       // node IPs in rotation
	passes  map[string]int // consecutive health checks passed, per node IP
	ready   map[string]time.Time
	seen    map[string]bool
}

func (l *lbNodes) run(ctx context.Context, c *framework.Cluster) {
	l.ready, l.seen, l.passes = map[string]time.Time{}, map[string]bool{}, map[string]int{}
	hc := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	refresh := func(now time.Time) {
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		list, err := c.Client.CoreV1().Nodes().List(lctx, metav1.ListOptions{})
		cancel()
		l.mu.Lock()
		if err == nil {
			l.nodes = list.Items
			present := map[string]bool{}
			for i := range list.Items {
				n := &list.Items[i]
				present[n.Name] = true
				if !l.seen[n.Name] {
					l.seen[n.Name] = true
					l.tl.add(now, "node %s registered (kubelet %s)", n.Name, n.Status.NodeInfo.KubeletVersion)
				}
				if _, was := l.ready[n.Name]; !was && framework.NodeReady(n) {
					l.ready[n.Name] = now
					l.tl.add(now, "node %s Ready", n.Name)
				}
			}
			for name := range l.seen {
				if !present[name] {
					delete(l.seen, name)
					l.tl.add(now, "node %s deleted", name)
				}
			}
		}
		nodes := slices.Clone(l.nodes)
		l.mu.Unlock()
		var healthy []string
		passes := map[string]int{}
		for i := range nodes {
			n := &nodes[i]
			ip := nodeIP(n)
			if ip == "" || !framework.NodeReady(n) || n.Spec.Unschedulable {
				continue
			}
			resp, err := hc.Get("http://" + net.JoinHostPort(ip, "10256") + "/healthz")
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				l.mu.Lock()
				passes[ip] = l.passes[ip] + 1
				l.mu.Unlock()
				if passes[ip] >= 3 {
					healthy = append(healthy, ip)
				}
			}
		}
		sort.Strings(healthy)
		l.mu.Lock()
		l.passes = passes
		if !slices.Equal(healthy, l.healthy) {
			l.tl.add(now, "load balancer rotation: %v", healthy)
		}
		l.healthy = healthy
		l.mu.Unlock()
	}
	refresh(time.Now())
	every(ctx, time.Second, refresh)
}

func (l *lbNodes) rotation() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.healthy)
}

// readyAt returns when the node was first seen Ready.
func (l *lbNodes) readyAt(node string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.ready[node]
	return at, ok
}

func nodeIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// probeWorkload GETs http://<node>:<nodePort>/ every 100 ms from this
// host, round robin over the load balancer's rotation, each on a new
// connection with a one-second timeout. An empty rotation counts as a
// failure: a load balancer with no backend fails its clients.
func probeWorkload(ctx context.Context, lb *lbNodes, nodePort int32, g *gapMeter) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	next := 0
	every(ctx, 100*time.Millisecond, func(now time.Time) {
		ips := lb.rotation()
		if len(ips) == 0 {
			g.record(now, fmt.Errorf("no node in rotation"))
			return
		}
		ip := ips[next%len(ips)]
		next++
		url := "http://" + net.JoinHostPort(ip, strconv.Itoa(int(nodePort))) + "/"
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: %s", url, resp.Status)
			}
		}
		if ctx.Err() != nil {
			return
		}
		g.record(time.Now(), err)
	})
}

// probeAPI GETs /api/v1/namespaces/default through the kubeconfig's
// endpoint every 100 ms; a probe succeeds when it answers 200. It asks
// /readyz too and counts its not-ready answers apart: a stopping API server
// answers not ready on purpose while it goes on serving requests. Each request opens a new connection, as a new kubectl would, so a
// connection kept alive to an apiserver that is gone does not stretch a
// gap past what the endpoint itself does.
//
// A probe fails when the endpoint refuses, resets, answers an error or has
// not answered in apiProbeTimeout; a slow answer is a gap, which the
// figures report. With one second, a cluster that never stopped serving
// failed TestAgentLeaderKilledWithSIGKILLResumesAndDisturbsNothing: while
// two clusters bootstrapped machines on two cores, a fresh TLS connection
// through the endpoint's proxies took 1-2 s three times, the first while
// the in-cluster probes saw the API server itself pause for 1.25 s.
func probeAPI(ctx context.Context, cfg *rest.Config, g *gapMeter) error {
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return err
	}
	rt, err := rest.HTTPWrappersForConfig(cfg, &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true})
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: apiProbeTimeout, Transport: rt}
	get := func(path string) error {
		resp, err := client.Get(cfg.Host + path)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	}
	go every(ctx, 100*time.Millisecond, func(time.Time) {
		notReady := get("/readyz") != nil
		err := get("/api/v1/namespaces/default")
		if ctx.Err() == nil {
			if notReady {
				g.notReadyAnswer()
			}
			g.record(time.Now(), err)
		}
	})
	return nil
}

// apiProbeTimeout is how long an API probe waits for its answer, here and
// in the in-cluster probes (e2e/probe): a user's client waits longer still.
const apiProbeTimeout = 5 * time.Second

// pdbWatch follows the workload's pods and records the fewest that were
// healthy as the disruption controller counts them (Ready and not being
// deleted) once armed, and every moment below minAvailable.
type pdbWatch struct {
	tl           *timeline
	minAvailable int

	mu         sync.Mutex
	armed      bool
	healthy    int
	min        int
	changes    int
	violations []string
}

func (p *pdbWatch) run(ctx context.Context, c *framework.Cluster, ns, selector string) {
	pods := c.Client.CoreV1().Pods(ns)
	follow(ctx, func(ctx context.Context) ([]*corev1.Pod, string, error) {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, "", err
		}
		var out []*corev1.Pod
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
		return out, l.ResourceVersion, nil
	}, func(ctx context.Context, rv string) (watch.Interface, error) {
		return pods.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: rv})
	}, func(p *corev1.Pod) string { return p.Name }, func(view map[string]*corev1.Pod) {
		healthy := 0
		for _, pod := range view {
			if pod.DeletionTimestamp == nil && podReady(pod) {
				healthy++
			}
		}
		now := time.Now()
		p.mu.Lock()
		defer p.mu.Unlock()
		if healthy != p.healthy {
			p.tl.add(now, "workload: %d pods healthy", healthy)
		}
		p.healthy = healthy
		p.changes++
		if !p.armed {
			return
		}
		p.min = min(p.min, healthy)
		if healthy < p.minAvailable {
			p.violations = append(p.violations, fmt.Sprintf("%s: %d healthy", now.Format("15:04:05.000"), healthy))
		}
	})
}

// arm starts checking, from the healthy count now.
func (p *pdbWatch) arm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.min = true, p.healthy
}

func (p *pdbWatch) figures() (minHealthy, changes int, violations []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.min, p.changes, slices.Clone(p.violations)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// apiProbeReport mirrors the report e2e/probe's apiprobe mode writes.
type apiProbeReport struct {
	Pod          string    `json:"pod"`
	Node         string    `json:"node"`
	Start        time.Time `json:"start"`
	FirstOK      time.Time `json:"firstOK"`
	LastOK       time.Time `json:"lastOK"`
	OK           int       `json:"ok"`
	Failed       int       `json:"failed"`
	NotReady     int       `json:"notReady"`
	LongestGapMS int64     `json:"longestGapMS"`
	LongestGapAt time.Time `json:"longestGapAt"`
	LastError    string    `json:"lastError"`
	Final        bool      `json:"final"`
}

// inClusterFigures sums up the in-cluster probe pods' reports over
// [from, to]: the longest gap any pod saw, the failures, and the longest
// stretch no pod covered (no pod was up and succeeding on both sides of
// it), which says how far the other figures can be trusted.
type inClusterFigures struct {
	Pods           int
	OK, Failed     int
	NotReady       int
	LongestGap     time.Duration
	LongestGapPod  string
	LongestGapAt   time.Time
	LongestBlind   time.Duration
	LongestBlindAt time.Time
	Reports        []apiProbeReport
}

func readInClusterProbe(ctx context.Context, c *framework.Cluster, ns, name string, from, to time.Time) (inClusterFigures, error) {
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return inClusterFigures{}, err
	}
	var f inClusterFigures
	type span struct{ from, to time.Time }
	var spans []span
	for key, raw := range cm.Data {
		var r apiProbeReport
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return f, fmt.Errorf("report %s: %w", key, err)
		}
		f.Reports = append(f.Reports, r)
		if r.LastOK.Before(from) || r.FirstOK.IsZero() || r.FirstOK.After(to) {
			continue
		}
		f.Pods++
		f.OK += r.OK
		f.Failed += r.Failed
		f.NotReady += r.NotReady
		if gap := time.Duration(r.LongestGapMS) * time.Millisecond; gap > f.LongestGap {
			f.LongestGap, f.LongestGapPod, f.LongestGapAt = gap, r.Pod, r.LongestGapAt
		}
		spans = append(spans, span{r.FirstOK, r.LastOK})
	}
	sort.Slice(f.Reports, func(i, j int) bool { return f.Reports[i].Start.Before(f.Reports[j].Start) })
	sort.Slice(spans, func(i, j int) bool { return spans[i].from.Before(spans[j].from) })
	covered := from
	for _, s := range spans {
		if s.from.After(covered) {
			if hole := s.from.Sub(covered); hole > f.LongestBlind {
				f.LongestBlind, f.LongestBlindAt = hole, covered
			}
		}
		if s.to.After(covered) {
			covered = s.to
		}
	}
	if to.After(covered) {
		if hole := to.Sub(covered); hole > f.LongestBlind {
			f.LongestBlind, f.LongestBlindAt = hole, covered
		}
	}
	return f, nil
}
