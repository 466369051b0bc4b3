package scaleenv

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
)

// Memory reads the agent's resident set now and its peak (VmRSS, VmHWM)
// from /proc: the kernel's own figures, the peak included, however short.
func (a *Agent) Memory() (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.Pid()))
	if err != nil {
		return 0, 0, fmt.Errorf("reading the agent's memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("reading the agent's %s %q: %w", key, value, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak, sc.Err()
}

// Samples are one scrape of the agent's /metrics.
type Samples map[string]float64

// Requests are the agent's API requests between two scrapes, by
// "verb resource", the Lease's leader-election renewals apart.
type Requests struct {
	Total    float64
	Leases   float64
	ByTarget map[string]float64
}

// RequestsBetween counts the requests made from before to after.
func RequestsBetween(before, after Samples) Requests {
	r := Requests{ByTarget: map[string]float64{}}
	for k, v := range after {
		name, labels, _ := strings.Cut(k, "{")
		if name != "seed_kube_requests_total" {
			continue
		}
		d := v - before[k]
		if d == 0 {
			continue
		}
		verb, resource := label(labels, "verb"), label(labels, "resource")
		if resource == "leases" {
			r.Leases += d
			continue
		}
		r.Total += d
		r.ByTarget[verb+" "+resource] += d
	}
	return r
}

// String lists the requests by target, most first.
func (r Requests) String() string {
	keys := make([]string, 0, len(r.ByTarget))
	for k := range r.ByTarget {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return r.ByTarget[keys[i]] > r.ByTarget[keys[j]] })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, r.ByTarget[k]))
	}
	return strings.Join(parts, ", ")
}

func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// Passes counts reconcile passes between two scrapes.
func Passes(before, after Samples) float64 {
	return after["seed_reconcile_duration_seconds_count"] - before["seed_reconcile_duration_seconds_count"]
}

// Wakes counts, by source, what asked the agent for a pass between two
// scrapes (seed_reconcile_wakes_total), as "node 3, timer 12"; sources with
// none are left out.
func Wakes(before, after Samples) string {
	const prefix = `seed_reconcile_wakes_total{source="`
	var parts []string
	for k, v := range after {
		source, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if n := v - before[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimSuffix(source, `"}`), n))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// PassQuantile estimates the q-quantile of the reconcile passes between
// two scrapes.
func PassQuantile(before, after Samples, q float64) float64 {
	return HistogramQuantile(before, after, "seed_reconcile_duration_seconds", q)
}

// PassesOver counts the reconcile passes between two scrapes that took
// longer than bound seconds, which must be one of the histogram's bucket
// bounds (the agent's include its targets, 0.2 and 1): exact, where a
// quantile is interpolated within a bucket. NaN if bound is no bucket's.
func PassesOver(before, after Samples, bound float64) float64 {
	for _, b := range histogramBuckets(before, after, "seed_reconcile_duration_seconds") {
		if math.Abs(b.le-bound) < 1e-9 {
			return Passes(before, after) - b.count
		}
	}
	return math.NaN()
}

// HistogramQuantile estimates the q-quantile of the histogram name's
// observations between two scrapes from its buckets, interpolating
// linearly within a bucket as Prometheus' histogram_quantile does.
func HistogramQuantile(before, after Samples, name string, q float64) float64 {
	buckets := histogramBuckets(before, after, name)
	if len(buckets) == 0 || buckets[len(buckets)-1].count == 0 {
		return math.NaN()
	}
	rank := q * buckets[len(buckets)-1].count
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lower
			}
			return lower + (b.le-lower)*(rank-below)/(b.count-below)
		}
		lower, below = b.le, b.count
	}
	return lower
}

type bucket struct{ le, count float64 }

// histogramBuckets are the histogram name's cumulative bucket counts
// between two scrapes, by bound, +Inf last.
func histogramBuckets(before, after Samples, name string) []bucket {
	var buckets []bucket
	for k, v := range after {
		if !strings.HasPrefix(k, name+"_bucket{") {
			continue
		}
		le := label(k, "le")
		bound := math.Inf(1)
		if le != "+Inf" {
			var err error
			if bound, err = strconv.ParseFloat(le, 64); err != nil {
				continue
			}
		}
		buckets = append(buckets, bucket{bound, v - before[k]})
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	return buckets
}

// ObjectSizes reads the size of the status and ledger ConfigMaps' data.
func (e *Env) ObjectSizes(ctx context.Context) (status, ledger int, err error) {
	cms := e.Client.CoreV1().ConfigMaps(e.Namespace)
	for _, c := range []struct {
		name string
		size *int
	}{{v1alpha1.StatusConfigMap, &status}, {v1alpha1.LedgerConfigMap, &ledger}} {
		cm, err := cms.Get(ctx, c.name, metav1.GetOptions{})
		if err != nil {
			continue // not written yet
		}
		*c.size = dataSize(cm.Data)
	}
	return status, ledger, nil
}
