// Package docker is the Docker provider: machines are containers running a
// node image on the local engine, one bridge network per cluster. It speaks
// the Docker Engine HTTP API over the unix socket itself, with no SDK and no
// docker CLI, because the agent that calls it runs from a scratch image.
// Everything it needs to find again lives in container, volume and network
// labels, so it works from the seed CLI and from inside the cluster alike.
//
// The API server endpoint belongs to a load-balancer container,
// "<cluster>-lb", which runs `agent lb` from the agent image (Options.LBImage)
// and is not a machine. It carries the endpoint's name, the network alias
// "<cluster>-control-plane" that kubeadm's controlPlaneEndpoint uses, and
// publishes 127.0.0.1:<port> (the port recorded on the network). Every
// control-plane machine carries the alias "<cluster>-apiservers" instead,
// which the load balancer resolves through Docker's DNS every half second,
// sending connections only to API servers whose /readyz passes. So a second
// control plane can join and the first can go with the endpoint intact.
//
// Clusters made before the load balancer have a first control plane named
// "<cluster>-control-plane" that publishes the port and carries the
// endpoint alias itself (it lacks the label seed.dev/endpoint), and a
// running container's bindings cannot change. For them:
//   - EnsureInfrastructure (seed up) creates the load balancer but leaves it
//     stopped while such a machine exists;
//   - a control plane created meanwhile carries the endpoint alias as well
//     as the backend one, so in-network clients (which Docker's DNS sends to
//     either) keep a live API server when the old one goes; it keeps both
//     names until it is itself replaced, which is harmless;
//   - DeleteMachine of the machine that publishes the port starts the load
//     balancer right after the removal: the external endpoint is gone for
//     about a second, once.
//
// New clusters name their first control plane "<cluster>-control-plane-1",
// so no machine's name resolves where the endpoint does.
//
// Machine types size what a machine's Node offers pods, not the container:
// every machine sees the whole host. The empty type offers all of it; a
// sized one, <cpu>x<memory> (v1alpha1.DockerMachineType), gets its size
// written to bootstrap.AllocatablePath, and the bootstrap script reserves
// the rest of the CPUs and memory the kubelet will count for the kubelet,
// so the Node's allocatable is the type exactly. The script, not this
// provider, computes the reservation because the kubelet's capacity is what
// cadvisor reads inside the machine (online CPUs, MemTotal, hugepages);
// the engine's NCPU and MemTotal serve to refuse a type the host cannot
// hold, in Preflight and CreateMachine, and to size the empty type.
package docker
