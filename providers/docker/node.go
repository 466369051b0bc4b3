package docker

import (
	"github.com/seedhq/seed/providers"
)

// apiServerContainerPort is where kube-apiserver listens inside a node.
const apiServerContainerPort = "6443/tcp"

// nodeParams is what varies between node containers.
type nodeParams struct {
	Name    string
	Image   string
	Network string
	// Labels go on the container; the cluster and machine labels also go on
	// its /var volume so that DestroyInfrastructure finds strays.
	Labels     map[string]string
	Privileged bool
	// ControlPlane is set for the control-plane machine only.
	ControlPlane *controlPlaneParams
}

type controlPlaneParams struct {
	// BackendAlias is the name the load balancer finds every control
	// plane's API server by.
	BackendAlias string
	// EndpointAlias, when set, is the endpoint's own name, which a control
	// plane carries only while an older one publishes the endpoint itself
	// (see doc.go).
	EndpointAlias string
	// HostSocket is the engine's socket as a path on the Docker host; it is
	// mounted at /var/run/docker.sock so the agent can manage machines.
	HostSocket string
}

// nodeContainer is the one place that says how a node container runs: the
// flags a node image with systemd, containerd and the kubelet needs. Keep
// them in step with images/node/README.md.
func nodeContainer(p nodeParams) containerCreateRequest {
	hc := hostConfig{
		// Each node gets its own cgroup namespace, so the systemd and kubelet
		// of several nodes on one host never manage the same cgroups; the
		// node image's entrypoint remounts the hierarchies writable inside
		// it (cgroup v1 and v2 alike). See images/node/README.md.
		CgroupnsMode: "private",
		// The kubelet writes kernel settings under /proc/sys and stops if it
		// cannot.
		MaskedPaths:   []string{},
		ReadonlyPaths: []string{},
		// Nodes come back after a host restart; a node stopped on purpose
		// stays stopped. The bootstrap marker keeps its script from rerunning.
		RestartPolicy: &restartPolicy{Name: "unless-stopped"},
		// containerd's snapshots, etcd's data and the kubelet's state live
		// under /var: keep them off the container's overlay filesystem,
		// which overlayfs cannot nest on. The volume is anonymous (removed
		// with the container) but labelled, so a stray one can be found.
		Mounts: []mount{{
			Type:   "volume",
			Target: "/var",
			VolumeOptions: &volumeOptions{Labels: map[string]string{
				providers.LabelCluster: p.Labels[providers.LabelCluster],
				providers.LabelMachine: p.Labels[providers.LabelMachine],
			}},
		}},
		// systemd expects /run and /tmp to be tmpfs.
		Tmpfs:       map[string]string{"/run": "", "/tmp": ""},
		SecurityOpt: []string{"seccomp=unconfined", "apparmor=unconfined"},
		NetworkMode: p.Network,
	}
	if p.Privileged {
		hc.Privileged = true
	} else {
		// --privileged fails on hosts whose bounding set lacks
		// CAP_SYS_RESOURCE; every other capability and all devices are
		// what nested containers need.
		hc.CapAdd = []string{"ALL"}
		hc.CapDrop = []string{"SYS_RESOURCE"}
		hc.DeviceCgroupRules = []string{"a *:* rwm"}
	}

	ep := endpointConfig{}
	if cp := p.ControlPlane; cp != nil {
		// No port on the host: the load balancer publishes the endpoint.
		ep.Aliases = []string{cp.BackendAlias}
		if cp.EndpointAlias != "" {
			ep.Aliases = append(ep.Aliases, cp.EndpointAlias)
		}
		hc.Binds = append(hc.Binds, cp.HostSocket+":/var/run/docker.sock")
	}

	return containerCreateRequest{
		Hostname: p.Name,
		Image:    p.Image,
		// systemd detects that it runs in a container from this.
		Env:    []string{"container=docker"},
		Labels: p.Labels,
		// What systemd takes as "shut down cleanly".
		StopSignal: "SIGRTMIN+3",
		HostConfig: hc,
		NetworkingConfig: networkingConfig{
			EndpointsConfig: map[string]endpointConfig{p.Network: ep},
		},
	}
}
