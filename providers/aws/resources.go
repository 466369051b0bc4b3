package aws

import (
	"context"
	"errors"
	"fmt"

	"github.com/seedhq/seed/providers"
)

// What Seed's kubelet configuration (pkg/bootstrap) leaves the kubelet on
// an instance: no kubeReserved or systemReserved, no memory.available
// eviction threshold, and the default maxPods.
const kubeletMaxPods = 110

// memoryOverheadPercent is how much of an instance type's nominal memory
// the kernel's MemTotal, which is the Node's capacity, is taken to lack:
// firmware, the kernel's own image and its page tables. EC2 publishes only
// the nominal size, and the gap differs by type (a few percent), so this
// errs on the side of less: a planner that counts memory a Node does not
// have would add machines for pods the scheduler still cannot place.
const memoryOverheadPercent = 7.5

// MachineTypeResources implements providers.Provider from EC2's
// description of the instance type, which is kept for the provider's life
// (types do not change size). The empty type is Invalid, as it is for
// CreateMachine: there is no default instance type.
func (p *provider) MachineTypeResources(ctx context.Context, machineType string) (providers.MachineResources, error) {
	op := "sizing machine type " + machineType
	if machineType == "" {
		return providers.MachineResources{}, providers.NewError(providers.KindInvalid, "sizing the empty machine type",
			errors.New("an AWS machine type is an instance type, such as t3.large"))
	}
	got, err := p.describeTypes(ctx, []string{machineType})
	if err != nil {
		if kindOf(err) == providers.KindInvalid || isCode(err, "InvalidInstanceType") {
			return providers.MachineResources{}, providers.NewError(providers.KindInvalid, op,
				fmt.Errorf("instance type %q is not offered in %s", machineType, p.spec.Region))
		}
		return providers.MachineResources{}, fmt.Errorf("%s: %w", op, err)
	}
	t, ok := got[machineType]
	if !ok {
		return providers.MachineResources{}, providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("instance type %q is not offered in %s", machineType, p.spec.Region))
	}
	return providers.MachineResources{
		MilliCPU: int64(t.vcpus) * 1000,
		Memory:   instanceMemory(t.memoryMiB),
		Pods:     kubeletMaxPods,
	}, nil
}

// instanceMemory is the memory, in bytes, a Node of an instance type with
// the nominal size reports: the nominal size less the overhead, in whole
// MiB.
func instanceMemory(nominalMiB int64) int64 {
	return nominalMiB * (1000 - int64(memoryOverheadPercent*10)) / 1000 << 20
}
