package docker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/providers"
)

// kubeletMaxPods is the kubelet's default maxPods, which Seed's kubelet
// configuration (pkg/bootstrap) keeps.
const kubeletMaxPods = 110

// host is what every machine of this engine sees, read once: the host does
// not change size under a running engine.
type host struct {
	mu   sync.Mutex
	info *engineInfo
}

func (p *provider) hostInfo(ctx context.Context) (engineInfo, error) {
	p.host.mu.Lock()
	defer p.host.mu.Unlock()
	if p.host.info != nil {
		return *p.host.info, nil
	}
	info, err := p.engine.Info(ctx)
	if err != nil {
		return engineInfo{}, err
	}
	p.host.info = &info
	return info, nil
}

// sized is a machine type's allocatable: for the empty type the whole
// host's, which the kubelet reports with nothing reserved; for a sized type
// the type's own, which the bootstrap script reserves the rest of the host
// to get. A type that is neither, or larger than the host, is an error to
// report as Invalid.
func sized(machineType string, h engineInfo) (milliCPU, memory int64, err error) {
	if machineType == "" {
		return h.NCPU * 1000, h.MemTotal, nil
	}
	milliCPU, memory, ok := v1alpha1.DockerMachineType(machineType)
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a Docker machine type: use <cpu>x<memory> such as 1x2Gi or 500mx1Gi, or leave it empty for a machine that sees the whole host", machineType)
	}
	if milliCPU > h.NCPU*1000 {
		return 0, 0, fmt.Errorf("%s needs %s CPUs; this Docker host has %d", machineType, cpus(milliCPU), h.NCPU)
	}
	if memory > h.MemTotal {
		return 0, 0, fmt.Errorf("%s needs %s of memory; this Docker host has %s", machineType, gib(memory), gib(h.MemTotal))
	}
	return milliCPU, memory, nil
}

func cpus(milli int64) string {
	return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(float64(milli)/1000, 'f', 3, 64), "0"), ".")
}

func gib(bytes int64) string {
	return strconv.FormatFloat(float64(bytes)/(1<<30), 'f', 2, 64) + "Gi"
}

// MachineTypeResources implements providers.Provider. A sized type's Node
// reports exactly its type; the empty type's reports the host's CPUs and
// MemTotal, as the engine reads them. Ephemeral storage is the host's disk,
// which the engine does not report: unknown.
func (p *provider) MachineTypeResources(ctx context.Context, machineType string) (providers.MachineResources, error) {
	op := "sizing machine type " + machineType
	h, err := p.hostInfo(ctx)
	if err != nil {
		return providers.MachineResources{}, fmt.Errorf("%s: %w", op, err)
	}
	cpu, mem, err := sized(machineType, h)
	if err != nil {
		return providers.MachineResources{}, providers.NewError(providers.KindInvalid, op, err)
	}
	return providers.MachineResources{MilliCPU: cpu, Memory: mem, Pods: kubeletMaxPods}, nil
}

// Preflight implements providers.Provider: every sized machine type of the
// spec must fit on this host. With none, there is nothing to check before
// EnsureInfrastructure, which reports an engine it cannot reach.
func (p *provider) Preflight(ctx context.Context) error {
	const op = "checking the Docker spec"
	fields := make([]string, 0, len(p.machineTypes))
	for f, t := range p.machineTypes {
		if t != "" {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	sort.Strings(fields)
	h, err := p.hostInfo(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var problems []string
	for _, f := range fields {
		if _, _, err := sized(p.machineTypes[f], h); err != nil {
			problems = append(problems, f+": "+err.Error())
		}
	}
	if len(problems) > 0 {
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("%s", strings.Join(problems, "; ")))
	}
	return nil
}

// allocatable is what the machine's bootstrap script reads from
// bootstrap.AllocatablePath: empty for a machine that offers the whole
// host.
func (p *provider) allocatable(ctx context.Context, machineType string) ([]byte, error) {
	if machineType == "" {
		return nil, nil
	}
	h, err := p.hostInfo(ctx)
	if err != nil {
		return nil, err
	}
	cpu, mem, err := sized(machineType, h)
	if err != nil {
		return nil, providers.NewError(providers.KindInvalid, "sizing machine type "+machineType, err)
	}
	return fmt.Appendf(nil, "%d %d\n", cpu, mem), nil
}
