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

// Decorate returns p with every call measured. Every capability is a
// method of providers.Provider, so the decorated provider has them all.
func (m *Metrics) Decorate(p providers.Provider) providers.Provider {
	return &decorated{next: p, m: m}
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

// Capabilities is a declaration, not a call: it is passed through unmeasured.
func (d *decorated) Capabilities() providers.Capabilities { return d.next.Capabilities() }

func (d *decorated) Preflight(ctx context.Context) (err error) {
	defer func(start time.Time) { d.observe("Preflight", start, err) }(time.Now())
	return d.next.Preflight(ctx)
}

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

func (d *decorated) StageImage(ctx context.Context, img providers.StagedImage) (err error) {
	defer func(start time.Time) { d.observe("StageImage", start, err) }(time.Now())
	return d.next.StageImage(ctx, img)
}

func (d *decorated) CreateMachines(ctx context.Context, specs []providers.MachineSpec) (_ []providers.Machine, err error) {
	defer func(start time.Time) { d.observe("CreateMachines", start, err) }(time.Now())
	return d.next.CreateMachines(ctx, specs)
}

func (d *decorated) MoveEndpoint(ctx context.Context, machine string) (err error) {
	defer func(start time.Time) { d.observe("MoveEndpoint", start, err) }(time.Now())
	return d.next.MoveEndpoint(ctx, machine)
}

func (d *decorated) ReadFile(ctx context.Context, machine, path string) (_ []byte, err error) {
	defer func(start time.Time) { d.observe("ReadFile", start, err) }(time.Now())
	return d.next.ReadFile(ctx, machine, path)
}

func (d *decorated) LoadImage(ctx context.Context, machine string, img providers.ImageArchive) (err error) {
	defer func(start time.Time) { d.observe("LoadImage", start, err) }(time.Now())
	return d.next.LoadImage(ctx, machine, img)
}

func (d *decorated) EnsureBackupStore(ctx context.Context) (_ providers.BackupStore, err error) {
	defer func(start time.Time) { d.observe("EnsureBackupStore", start, err) }(time.Now())
	return d.next.EnsureBackupStore(ctx)
}

func (d *decorated) DeleteBackupStore(ctx context.Context) (err error) {
	defer func(start time.Time) { d.observe("DeleteBackupStore", start, err) }(time.Now())
	return d.next.DeleteBackupStore(ctx)
}

func (d *decorated) MachineTypeResources(ctx context.Context, machineType string) (_ providers.MachineResources, err error) {
	defer func(start time.Time) { d.observe("MachineTypeResources", start, err) }(time.Now())
	return d.next.MachineTypeResources(ctx, machineType)
}
