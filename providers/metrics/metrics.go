package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedhq/seed/providers"
)

// Metrics are the provider call metrics; register them once per process.
type Metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seed_provider_call_duration_seconds",
			Help:    "Latency of infrastructure provider calls.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"provider", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seed_provider_call_errors_total",
			Help: "Failed infrastructure provider calls, by error kind.",
		}, []string{"provider", "method", "kind"}),
	}
	reg.MustRegister(m.duration, m.errors)
	return m
}

// Decorate returns p with every call measured. The optional capabilities
// that callers look for by type assertion are passed through when p has them.
func (m *Metrics) Decorate(p providers.Provider) providers.Provider {
	d := &decorated{next: p, m: m}
	if b, ok := p.(providers.BatchCreator); ok {
		return &decoratedBatch{decorated: d, batch: b}
	}
	return d
}

type decoratedBatch struct {
	*decorated
	batch providers.BatchCreator
}

var _ providers.BatchCreator = (*decoratedBatch)(nil)

func (d *decoratedBatch) CreateMachines(ctx context.Context, specs []providers.MachineSpec) (_ []providers.Machine, err error) {
	defer func(start time.Time) { d.observe("CreateMachines", start, err) }(time.Now())
	return d.batch.CreateMachines(ctx, specs)
}

type decorated struct {
	next providers.Provider
	m    *Metrics
}

var _ providers.Provider = (*decorated)(nil)

func (d *decorated) observe(method string, start time.Time, err error) {
	name := d.next.Name()
	d.m.duration.WithLabelValues(name, method).Observe(time.Since(start).Seconds())
	if err != nil {
		kind := string(providers.KindOf(err))
		if kind == "" {
			kind = "Unknown"
		}
		d.m.errors.WithLabelValues(name, method, kind).Inc()
	}
}

func (d *decorated) Name() string { return d.next.Name() }

func (d *decorated) EnsureInfrastructure(ctx context.Context) (_ providers.Infrastructure, err error) {
	defer func(start time.Time) { d.observe("EnsureInfrastructure", start, err) }(time.Now())
	return d.next.EnsureInfrastructure(ctx)
}

func (d *decorated) DestroyInfrastructure(ctx context.Context) (err error) {
	defer func(start time.Time) { d.observe("DestroyInfrastructure", start, err) }(time.Now())
	return d.next.DestroyInfrastructure(ctx)
}

func (d *decorated) CreateMachine(ctx context.Context, spec providers.MachineSpec) (_ providers.Machine, err error) {
	defer func(start time.Time) { d.observe("CreateMachine", start, err) }(time.Now())
	return d.next.CreateMachine(ctx, spec)
}

func (d *decorated) DeleteMachine(ctx context.Context, name string) (err error) {
	defer func(start time.Time) { d.observe("DeleteMachine", start, err) }(time.Now())
	return d.next.DeleteMachine(ctx, name)
}

func (d *decorated) ListMachines(ctx context.Context) (_ []providers.Machine, err error) {
	defer func(start time.Time) { d.observe("ListMachines", start, err) }(time.Now())
	return d.next.ListMachines(ctx)
}
