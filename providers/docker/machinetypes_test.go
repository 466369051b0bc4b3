package docker

import (
	"testing"

	"github.com/seedhq/seed/providers"
)

func TestMachineTypeResources(t *testing.T) {
	f := newFakeEngine(testImage)
	f.SetHost(2, 8<<30)
	p, _ := newTestProvider(t, f, Options{})
	for _, tt := range []struct {
		machineType string
		want        providers.MachineResources
		err         string
	}{
		{machineType: "1x2Gi", want: providers.MachineResources{MilliCPU: 1000, Memory: 2 << 30, Pods: 110}},
		{machineType: "500mx1Gi", want: providers.MachineResources{MilliCPU: 500, Memory: 1 << 30, Pods: 110}},
		{machineType: "2x8Gi", want: providers.MachineResources{MilliCPU: 2000, Memory: 8 << 30, Pods: 110}},
		{machineType: "", want: providers.MachineResources{MilliCPU: 2000, Memory: 8 << 30, Pods: 110}},
		{machineType: "4x8Gi", err: "4x8Gi needs 4 CPUs; this Docker host has 2"},
		{machineType: "1500mx9Gi", err: "1500mx9Gi needs 9.00Gi of memory; this Docker host has 8.00Gi"},
		{machineType: "t3.large", err: `"t3.large" is not a Docker machine type`},
	} {
		got, err := p.MachineTypeResources(ctx(t), tt.machineType)
		if tt.err != "" {
			mustKind(t, err, providers.KindInvalid, tt.err)
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("MachineTypeResources(%q) = %+v, %v; want %+v", tt.machineType, got, err, tt.want)
		}
	}
	if n := f.Calls("Info"); n != 1 {
		t.Errorf("the engine's info was read %d times, want once: the host does not change size", n)
	}
}

func TestPreflightNamesTheFieldOfATypeLargerThanTheHost(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{MachineTypes: map[string]string{
		"spec.controlPlane.machineType": "2x4Gi",
		"spec.nodePools[0].machineType": "4x8Gi",
		"spec.nodePools[1].machineType": "1x2Gi",
	}})
	mustKind(t, p.Preflight(ctx(t)), providers.KindInvalid, "spec.nodePools[0].machineType: 4x8Gi needs 4 CPUs; this Docker host has 2")

	p, _ = newTestProvider(t, newFakeEngine(testImage), Options{MachineTypes: map[string]string{"spec.nodePools[0].machineType": "1x2Gi"}})
	if err := p.Preflight(ctx(t)); err != nil {
		t.Errorf("Preflight of types that fit = %v", err)
	}
	none := newFakeEngine(testImage)
	p, _ = newTestProvider(t, none, Options{})
	if err := p.Preflight(ctx(t)); err != nil || none.Calls("Info") != 0 {
		t.Errorf("Preflight with no sized type = %v after %d engine calls, want nil and none", err, none.Calls("Info"))
	}
}

func TestASizedMachineCarriesItsAllocatableAndAnOversizedOneIsNotMade(t *testing.T) {
	f := newFakeEngine(testImage)
	p, _ := newTestProvider(t, f, Options{NodeImage: testImage})
	if _, err := p.EnsureInfrastructure(ctx(t)); err != nil {
		t.Fatal(err)
	}
	spec := workerSpec("demo-workers-small")
	spec.MachineType = "1x2Gi"
	if _, err := p.CreateMachine(ctx(t), spec); err != nil {
		t.Fatal(err)
	}
	c, _ := f.byName(spec.Name)
	if got := untar(t, c.archives[0])["var/lib/seed/allocatable"]; got != (tarEntry{0o644, "1000 2147483648\n"}) {
		t.Errorf("allocatable file = %+v, want 1000 millicores and 2Gi in bytes", got)
	}
	if c.Labels[providers.LabelType] != "1x2Gi" {
		t.Errorf("type label = %q", c.Labels[providers.LabelType])
	}

	plain := workerSpec("demo-workers-plain")
	if _, err := p.CreateMachine(ctx(t), plain); err != nil {
		t.Fatal(err)
	}
	c, _ = f.byName(plain.Name)
	if _, ok := untar(t, c.archives[0])["var/lib/seed/allocatable"]; ok {
		t.Error("a machine of the empty type has an allocatable file: it would offer less than the host")
	}

	big := workerSpec("demo-workers-big")
	big.MachineType = "3x2Gi"
	_, err := p.CreateMachine(ctx(t), big)
	mustKind(t, err, providers.KindInvalid, "3x2Gi needs 3 CPUs; this Docker host has 2")
	if _, ok := f.byName(big.Name); ok {
		t.Error("an oversized machine was created")
	}
}
