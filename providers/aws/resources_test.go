package aws

import (
	"strings"
	"testing"

	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/aws/fake"
)

func TestMachineTypeResourcesComeFromTheInstanceTypeOnceAndAreKeptPerType(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	want := providers.MachineResources{MilliCPU: 2000, Memory: 7577 << 20, Pods: 110} // m6i.large: 2 vCPUs, 8192 MiB less 7.5%
	for range 2 {
		got, err := e.p.MachineTypeResources(ctx, "m6i.large")
		if err != nil || got != want {
			t.Fatalf("MachineTypeResources(m6i.large) = %+v, %v; want %+v", got, err, want)
		}
	}
	if n := e.ec2.Calls("DescribeInstanceTypes"); n != 1 {
		t.Errorf("DescribeInstanceTypes called %d times for one type asked twice, want 1", n)
	}
	if got, err := e.p.MachineTypeResources(ctx, "t3.micro"); err != nil || got.MilliCPU != 2000 || got.Memory != 947<<20 {
		t.Errorf("MachineTypeResources(t3.micro) = %+v, %v; want 2000m and 947Mi", got, err)
	}
}

func TestMachineTypeResourcesOfATypeEC2DoesNotOfferAreInvalid(t *testing.T) {
	e := newEnv(t)
	for _, mt := range []string{"m9x.huge", ""} {
		_, err := e.p.MachineTypeResources(t.Context(), mt)
		if !providers.IsInvalid(err) {
			t.Errorf("MachineTypeResources(%q) = %v, want Invalid", mt, err)
		}
		if mt != "" && !strings.Contains(err.Error(), `"m9x.huge"`) {
			t.Errorf("the error %q does not name the type", err)
		}
	}
}

func TestMachineTypeResourcesWhenEC2ThrottlesAreRetryable(t *testing.T) {
	e := newEnv(t)
	e.ec2.InjectFault("DescribeInstanceTypes", fake.Fault{Err: fake.Throttled()})
	if _, err := e.p.MachineTypeResources(t.Context(), "m6i.large"); !providers.IsThrottled(err) {
		t.Fatalf("MachineTypeResources while throttled = %v, want Throttled", err)
	}
	if _, err := e.p.MachineTypeResources(t.Context(), "m6i.large"); err != nil {
		t.Errorf("MachineTypeResources once EC2 answers = %v", err)
	}
}
