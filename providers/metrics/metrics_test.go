package metrics

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

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
}

// Every capability is a method of the interface: the decorator must pass
// each through, measured, and the declared capabilities unchanged.
func TestDecorateKeepsEveryCapability(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := fake.New(nil)
	caps := providers.Capabilities{StagesImages: true, ReadsFiles: true,
		Agent: providers.AgentRequirements{Image: "registry.example/agent:v1", CredentialsSecret: "aws"}}
	f.SetCapabilities(caps)
	p := NewMetrics(reg).Decorate(f)
	ctx := context.Background()

	if got := p.Capabilities(); !reflect.DeepEqual(got, caps) {
		t.Errorf("Capabilities = %+v through the decorator, want %+v", got, caps)
	}
	if err := p.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.StageImage(ctx, providers.StagedImage{Name: "agent", Data: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	made, err := p.CreateMachines(ctx, []providers.MachineSpec{{Name: "a"}, {Name: "b", Role: providers.RoleControlPlane}})
	if err != nil || len(made) != 2 {
		t.Fatalf("CreateMachines = %d machines, %v", len(made), err)
	}
	f.SetFile("a", "/etc/x", []byte("y"))
	if b, err := p.ReadFile(ctx, "a", "/etc/x"); err != nil || string(b) != "y" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if err := p.MoveEndpoint(ctx, "b"); err != nil || f.Endpoint() != "b" {
		t.Fatalf("MoveEndpoint = %v, endpoint on %q", err, f.Endpoint())
	}
	if r, err := p.MachineTypeResources(ctx, ""); err != nil || r != fake.DefaultMachineResources {
		t.Fatalf("MachineTypeResources = %+v, %v; want %+v", r, err, fake.DefaultMachineResources)
	}
	for _, m := range []string{fake.MethodPreflight, fake.MethodStageImage, fake.MethodCreateMachines, fake.MethodReadFile, fake.MethodMoveEndpoint, fake.MethodMachineTypeResources} {
		if f.Calls(m) != 1 {
			t.Errorf("%s reached the provider %d times, want 1", m, f.Calls(m))
		}
	}
	if _, ok := f.Staged()["agent"]; !ok {
		t.Error("the staged image did not reach the provider")
	}
	if got := testutil.CollectAndCount(reg, "seed_provider_call_duration_seconds"); got != 6 {
		t.Errorf("duration series: got %d, want 6 (Preflight, StageImage, CreateMachines, ReadFile, MoveEndpoint, MachineTypeResources)", got)
	}
}
