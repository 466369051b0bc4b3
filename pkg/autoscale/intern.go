package autoscale

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// internLimit bounds each of an Interner's tables.
const internLimit = 4096

// Interner makes compact records that share their equal parts. The pods of
// one ReplicaSet, Job or DaemonSet have the same labels, node selector and
// tolerations, and their namespace and node names repeat; kept once per
// pod, these maps and strings cost more than the rest of the record (a Go
// map of two labels takes about 300 bytes). Each table holds at most
// internLimit entries and starts afresh when full, so pods whose labels all
// differ (a StatefulSet's) cost what they would without it and the tables
// stay bounded. Records from an Interner share maps and slices: like every
// cached record, they are never changed. Safe for concurrent use.
type Interner struct {
	mu          sync.Mutex
	strings     map[string]string
	maps        map[string]map[string]string
	tolerations map[string][]corev1.Toleration
}

// PodOf is PodOf(p), its repeated parts shared with the records made
// before it.
func (in *Interner) PodOf(p *corev1.Pod) *Pod {
	out := PodOf(p)
	in.mu.Lock()
	defer in.mu.Unlock()
	out.Namespace = in.string(out.Namespace)
	out.NodeName = in.string(out.NodeName)
	out.Labels = in.stringMap(out.Labels)
	out.NodeSelector = in.stringMap(out.NodeSelector)
	out.Tolerations = in.tolerationList(out.Tolerations)
	return out
}

func (in *Interner) string(s string) string {
	if s == "" {
		return s
	}
	return intern(&in.strings, s, s)
}

// stringMap returns the table's map equal to m, or m, which becomes the
// table's.
func (in *Interner) stringMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		// Label keys and values never hold a NUL.
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return intern(&in.maps, b.String(), m)
}

func (in *Interner) tolerationList(ts []corev1.Toleration) []corev1.Toleration {
	if len(ts) == 0 {
		return nil
	}
	var b strings.Builder
	for _, t := range ts {
		for _, f := range []string{t.Key, string(t.Operator), t.Value, string(t.Effect)} {
			b.WriteString(f)
			b.WriteByte(0)
		}
		if t.TolerationSeconds == nil {
			b.WriteString("-")
		} else {
			b.WriteString(strconv.FormatInt(*t.TolerationSeconds, 10))
		}
		b.WriteByte(0)
	}
	return intern(&in.tolerations, b.String(), ts)
}

// intern returns table[key], first setting it to v if absent; a full
// table is emptied first.
func intern[V any](table *map[string]V, key string, v V) V {
	if got, ok := (*table)[key]; ok {
		return got
	}
	if *table == nil || len(*table) >= internLimit {
		*table = make(map[string]V)
	}
	(*table)[key] = v
	return v
}
