package check

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/seedhq/seed/agent/controller"
	providermetrics "github.com/seedhq/seed/providers/metrics"
)

// generated are series Prometheus makes itself, not the agent.
var generated = map[string]bool{"up": true}

// recorder registers collectors like a registry and keeps them, so the
// test can give every labelled metric a value: a vector with no labels
// observed yet does not appear on /metrics at all.
type recorder struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
	r.Registry.MustRegister(cs...)
}

// agentMetrics serves the agent's registry as agent/app builds it (the Go
// and process collectors, the provider decorator's metrics, the
// reconciler's) and returns the metric names on its /metrics.
func agentMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := &recorder{Registry: prometheus.NewRegistry()}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	providermetrics.NewMetrics(reg)
	controller.NewMetrics(reg)
	for _, c := range reg.collectors {
		seed(c)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		names[name] = true
	}
	return names
}

// seed observes one value of a vector, whatever its number of labels.
func seed(c prometheus.Collector) {
	values := func(n int) []string {
		v := make([]string, n)
		for i := range v {
			v[i] = "x"
		}
		return v
	}
	for n := 1; n <= 6; n++ {
		switch v := c.(type) {
		case *prometheus.CounterVec:
			if m, err := v.GetMetricWithLabelValues(values(n)...); err == nil {
				m.Add(0)
				return
			}
		case *prometheus.GaugeVec:
			if m, err := v.GetMetricWithLabelValues(values(n)...); err == nil {
				m.Set(0)
				return
			}
		case *prometheus.HistogramVec:
			if m, err := v.GetMetricWithLabelValues(values(n)...); err == nil {
				m.Observe(0)
				return
			}
		default:
			return
		}
	}
}

// metricNames lists the metrics an expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	// Grafana's interval variables are not PromQL.
	for _, v := range []string{"$__rate_interval", "$__interval", "$__range"} {
		expr = strings.ReplaceAll(expr, v, "5m")
	}
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

func TestAlertingRulesParseAndNameOnlyMetricsTheAgentExports(t *testing.T) {
	exported := agentMetrics(t)
	groups, errs := rulefmt.ParseFile("../alerts.yaml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alerts.yaml: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			for _, name := range metricNames(t, "alert "+r.Alert, r.Expr) {
				if !exported[name] && !generated[name] {
					t.Errorf("alert %s names %s, which the agent does not export", r.Alert, name)
				}
			}
		}
	}
	for _, want := range []string{"SeedAgentDown", "SeedReconcileErrors", "SeedRemediationHalted", "SeedDrainBlocked", "SeedUpgradeStuck", "SeedBackupStale"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

type panel struct {
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource *datasource     `json:"datasource"`
	Targets    []target        `json:"targets"`
	Panels     []panel         `json:"panels"`
	GridPos    json.RawMessage `json:"gridPos"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

func TestDashboardIsCurrentGrafanaAndNamesOnlyMetricsTheAgentExports(t *testing.T) {
	exported := agentMetrics(t)
	raw, err := os.ReadFile("../grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 39 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q: want schemaVersion ≥ 39 and a uid and title", d.SchemaVersion, d.UID, d.Title)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		hasDS = hasDS || v.Type == "datasource" && v.Query == "prometheus" && v.Name == "datasource"
	}
	if !hasDS {
		t.Error("no datasource variable of type prometheus named datasource: the dashboard would be bound to one Prometheus")
	}
	var walk func([]panel)
	n := 0
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			n++
			if len(p.GridPos) == 0 || len(p.Targets) == 0 {
				t.Errorf("panel %q has no gridPos or no queries", p.Title)
			}
			for _, tg := range p.Targets {
				for _, ds := range []*datasource{p.Datasource, tg.Datasource} {
					if ds == nil || ds.UID != "${datasource}" {
						t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, ds)
					}
				}
				// A histogram's _bucket, _sum and _count are on /metrics
				// as such.
				for _, name := range metricNames(t, "panel "+p.Title, tg.Expr) {
					if !exported[name] && !generated[name] {
						t.Errorf("panel %q names %s, which the agent does not export", p.Title, name)
					}
				}
			}
		}
	}
	walk(d.Panels)
	if n == 0 {
		t.Error("the dashboard has no panels")
	}
}
