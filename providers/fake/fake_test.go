package fake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/seedhq/seed/providers"
)

// The fake has every capability a provider can declare, so tests drive the
// paths a real provider with that capability takes; narrowed, it fails as
// a real provider without it does.
func TestEveryCapabilityAndItsAbsence(t *testing.T) {
	ctx := context.Background()
	p := New(nil)
	caps := p.Capabilities()
	if caps.PreloadedImages || !caps.StagesImages || !caps.ReadsFiles {
		t.Fatalf("default Capabilities = %+v, want images pulled and staged, files readable", caps)
	}
	if err := p.StageImage(ctx, providers.StagedImage{Name: "agent", Data: strings.NewReader("tar"), Size: 3}); err != nil {
		t.Fatal(err)
	}
	if got := p.Staged()["agent"]; string(got.Data) != "tar" || got.Workers {
		t.Errorf("staged %+v", got)
	}
	if err := p.StageImage(ctx, providers.StagedImage{Name: "bad", Data: strings.NewReader("tar"), Size: 9}); !providers.IsInvalid(err) {
		t.Errorf("StageImage with a wrong size = %v, want Invalid", err)
	}

	if _, err := p.ReadFile(ctx, "m1", "/etc/x"); !providers.IsNotFound(err) {
		t.Errorf("ReadFile on no machine = %v, want NotFound", err)
	}
	p.Add(providers.Machine{Name: "m1"})
	if _, err := p.ReadFile(ctx, "m1", "/etc/x"); !providers.IsNotFound(err) {
		t.Errorf("ReadFile of a file not there yet = %v, want NotFound", err)
	}
	p.SetFile("m1", "/etc/x", []byte("y"))
	if b, err := p.ReadFile(ctx, "m1", "/etc/x"); err != nil || string(b) != "y" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}

	p.FailNext(MethodPreflight, errors.New("no"))
	if err := p.Preflight(ctx); err == nil {
		t.Error("Preflight ignored its programmed failure")
	}

	p.SetCapabilities(providers.Capabilities{PreloadedImages: true})
	if err := p.StageImage(ctx, providers.StagedImage{Name: "agent", Data: strings.NewReader("tar"), Size: 3}); !providers.IsInvalid(err) {
		t.Errorf("StageImage without the capability = %v, want Invalid", err)
	}
	if _, err := p.ReadFile(ctx, "m1", "/etc/x"); !providers.IsInvalid(err) {
		t.Errorf("ReadFile without the capability = %v, want Invalid", err)
	}
}

func TestMachineTypeResourcesAreWhatWasSetAndUnknownTypesAreInvalid(t *testing.T) {
	ctx := context.Background()
	p := New(nil)
	if r, err := p.MachineTypeResources(ctx, ""); err != nil || r != DefaultMachineResources {
		t.Errorf("the empty type = %+v, %v; want %+v", r, err, DefaultMachineResources)
	}
	small := providers.MachineResources{MilliCPU: 1000, Memory: 2 << 30, Pods: 110}
	p.SetMachineType("small", small)
	if r, err := p.MachineTypeResources(ctx, "small"); err != nil || r != small {
		t.Errorf("small = %+v, %v; want %+v", r, err, small)
	}
	if _, err := p.MachineTypeResources(ctx, "huge"); !providers.IsInvalid(err) || !strings.Contains(err.Error(), `"huge"`) {
		t.Errorf("an unknown type = %v, want Invalid naming it", err)
	}
}
