package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

type batchFake struct {
	*fake.Provider
	batches int
}

func (b *batchFake) CreateMachines(ctx context.Context, specs []providers.MachineSpec) ([]providers.Machine, error) {
	b.batches++
	var out []providers.Machine
	for _, s := range specs {
		m, err := b.CreateMachine(ctx, s)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

func TestDecorateCountsCallsAndErrorsByKind(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := fake.New(nil)
	p := NewMetrics(reg).Decorate(f)
	ctx := context.Background()
	if _, err := p.CreateMachine(ctx, providers.MachineSpec{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	f.FailNext(fake.MethodListMachines, providers.NewError(providers.KindThrottled, "listing", errors.New("slow down")))
	if _, err := p.ListMachines(ctx); !providers.IsThrottled(err) {
		t.Fatalf("got %v, want the provider's throttled error through the decorator", err)
	}
	if got := testutil.CollectAndCount(reg, "seed_provider_call_duration_seconds"); got != 2 {
		t.Errorf("duration series: got %d, want 2 (CreateMachine, ListMachines)", got)
	}
	want := `
# HELP seed_provider_call_errors_total Failed infrastructure provider calls, by error kind.
# TYPE seed_provider_call_errors_total counter
seed_provider_call_errors_total{kind="Throttled",method="ListMachines",provider="fake"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "seed_provider_call_errors_total"); err != nil {
		t.Error(err)
	}
	if _, ok := p.(providers.BatchCreator); ok {
		t.Error("a provider without batches must not look like a BatchCreator once decorated")
	}
}

func TestDecorateKeepsBatchCreator(t *testing.T) {
	b := &batchFake{Provider: fake.New(nil)}
	p := NewMetrics(prometheus.NewRegistry()).Decorate(b)
	bc, ok := p.(providers.BatchCreator)
	if !ok {
		t.Fatal("the decorated provider lost BatchCreator")
	}
	if _, err := bc.CreateMachines(context.Background(), []providers.MachineSpec{{Name: "a"}, {Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	if b.batches != 1 || len(b.Machines()) != 2 {
		t.Errorf("batches %d machines %d, want 1 and 2", b.batches, len(b.Machines()))
	}
}
