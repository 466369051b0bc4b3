// Package aws is Seed's AWS provider: machines are EC2 instances, and the
// cluster-wide resources are a VPC (or the one the spec names), security
// groups, a stable control-plane endpoint, two IAM roles and a private
// bucket, all tagged as the cluster's and found again by those tags.
// New returns a providers.Provider that preflights, stages images and
// creates machines in batches, and declares so in its Capabilities.
//
// # Credentials
//
// Without an injected aws.Config, New loads the SDK's standard chain with
// config.LoadDefaultConfig for spec.provider.aws.region: environment
// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
// the shared config and credentials files with AWS_PROFILE or
// Options.Profile (SSO profiles work after `aws sso login`; so do
// credential_process and role_arn profiles), web identity, the container
// endpoint, and IMDSv2 on an instance. The agent, in the cluster, uses the
// control-plane instance profile through IMDSv2, or the credentials of
// spec.provider.aws.credentialsSecret when the agent's Deployment maps that
// Secret to the AWS_* variables. Whatever the source, the provider installs
// its own retryer (NewRetryer): the SDK's standard one, with full-jitter
// exponential backoff, throttling codes (RequestLimitExceeded and the
// others in retry.DefaultThrottleErrorCodes) retried up to ten attempts,
// and capacity codes never retried in place.
//
// The permissions `seed up` and `seed down` need are in
// manifests/aws/seed-policy.json (EC2 reads and creates on *, deletions only
// of resources carrying a seed.dev/cluster tag, IAM only on roles and
// instance profiles named seed-*, S3 only on buckets named seed-*). The
// agent's are in manifests/aws/agent-policy.json, rendered per cluster and
// put inline on the control-plane role: describe; run instances only with
// the cluster's ownership tags (aws:RequestTag) into the cluster's VPC and
// security groups; tag only at launch; stop and terminate only instances
// tagged kubernetes.io/cluster/<name>=owned (ec2:ResourceTag); pass only
// the cluster's two roles (workers, and a replacement control plane), only
// to EC2; move the endpoint address (AssignPrivateIpAddresses) only onto
// interfaces tagged kubernetes.io/cluster/<name>=owned; in S3, list the
// cluster's bucket only with the prefixes images/all/ and
// images/control-plane/ (s3:prefix) and read only the objects under them;
// in the backup bucket, list, read, write and delete only under velero/ and
// etcd/; and nothing else. What cannot be scoped: Describe calls (read-only, on
// *); and AssignPrivateIpAddresses with AllowReassignment is authorised on
// the interface that receives the address, so the policy cannot say that
// the address taken must be the cluster's VIP (the provider only ever
// names it, and the interfaces it may land on are the cluster's). The agent
// has no UnassignPrivateIpAddresses: parking is an assignment to the
// holder. The seed may in addition tag an interface of the cluster with
// seed.dev/endpoint-ip, and nothing else after creation.
//
// # Control-plane endpoint: a movable secondary address, not an NLB
//
// The endpoint is a secondary private address (the VIP) in the first
// subnet, and ControlPlaneEndpoint is <VIP>:6443, which kubelets and pods
// use without a trip through the internet gateway; ExternalEndpoint is
// <Elastic IP>:6443, for the seed outside, with the Elastic IP mapped to
// the VIP. Both go in the certificate's SANs. Each control plane has an
// interface of its own (nodes and api-server groups); the VIP is on one of
// them at a time, so a second control plane can join and then take it
// over, which an upgrade by surge needs (join the new, move, delete the
// old). A primary address could not do that: EC2 cannot detach a primary
// interface nor move a primary address.
//
// EC2 keeps a secondary address allocated only while some interface has
// it. EnsureInfrastructure therefore makes a holder: an interface with one
// secondary address, never attached, tagged seed.dev/endpoint-ip=<VIP>
// (the tag is how the VIP is found wherever it is). The VIP moves with
// AssignPrivateIpAddresses(AllowReassignment) and nothing else; see
// endpoint.go for who moves it when:
//
//   - CreateMachine of a control plane gives it the VIP when no control
//     plane has it (the VIP is on the holder): the first control plane, or
//     the next after the last was deleted;
//   - MoveEndpoint(machine) gives it to that control plane. The agent calls
//     it once the new control plane is healthy and before it deletes the
//     old; until then the new one joins through the VIP on the old one;
//   - DeleteMachine of the control plane that has it puts it back on the
//     holder first, and does not terminate if that fails, so terminating an
//     instance never frees the VIP;
//   - EnsureInfrastructure puts it back on the holder if no interface has
//     it (an instance terminated outside Seed) while it is still free, and
//     maps the Elastic IP to it again.
//
// EC2 documents that an Elastic IP mapped to a secondary address moves
// with it, and that the remap is asynchronous, to be confirmed in IMDS's
// network/interfaces/macs/<mac>/local-ipv4s. A control plane's user data
// installs a service (seed-endpoint) that polls exactly that every two
// seconds, adds the VIP (/32) to the interface while it is listed and
// removes it when it is not. It calls no AWS API: the control-plane role
// needs nothing for it. kube-apiserver listens on every address, so
// nothing else changes. Expect a gap of a few seconds at a move (remap,
// then the next poll); on AWS the remap time, and whether the Elastic IP
// follows as documented, have not been measured.
//
// Two caveats. kubeadm picks the node's advertise address from the
// default interface when none is configured; the primary address comes
// first there, but the VIP is on the same interface, so pinning the
// advertise address to the primary one (pkg/bootstrap) would remove the
// doubt. And control planes stay in the first subnet's zone, because a
// secondary address moves only within its subnet: a capacity error there
// is reported as KindCapacity rather than moved.
//
// An NLB would survive the loss of a zone, but a single control-plane node
// cannot (its etcd lives on an EBS volume in one zone), so that advantage
// is moot until the control plane is highly available. An NLB costs about
// five times an Elastic IP per month before traffic, needs the
// elasticloadbalancingv2 SDK, its listeners, target groups and health
// checks, and answers from several addresses. When the spec names a VPC
// without an internet gateway, no Elastic IP is made and both endpoints
// are the VIP.
//
// # Existing clusters
//
// A cluster made before the movable endpoint has an endpoint interface
// with no secondary address and no seed.dev/endpoint-ip tag, attached to
// its control plane as device 0; its endpoint is that interface's primary
// address, which is in every kubeconfig and certificate and cannot move.
// EnsureInfrastructure recognises it, logs that it cannot move, and keeps
// it: the endpoint stays the same and control planes are still launched
// onto that interface. MoveEndpoint answers Invalid, saying why, so such a
// cluster cannot be upgraded by surge. Moving it to a VIP means a new
// endpoint address (new certificates and kubeconfigs), which no code does;
// recreating the cluster is the supported way.
//
// None of this has run against a real AWS account: it is tested through
// the real aws-sdk-go-v2 against the fake EC2 (providers/aws/fake) and its
// EC2 Query endpoint (providers/aws/ec2server), whose address semantics
// follow the EC2 API reference, and the claim script is only parsed
// (bash -n), never run.
//
// # Concurrent callers
//
// Two `seed up` of one cluster at once, or `seed up` and `seed kubeconfig`,
// both run EnsureInfrastructure, and each may find nothing and create. They
// end with one of everything, all using the same one (races.go). Where EC2
// admits only one (a group name in its VPC, a subnet's CIDR, a VPC's one
// internet gateway, a route, a subnet's route table, a rule, a ClientToken)
// the later write fails and its step starts again from a fresh describe,
// at most five times. Where EC2 keeps every create (VPCs, Elastic IPs), the
// caller that made one waits five seconds, describes again, and keeps the
// lowest ID (for Elastic IPs, one already mapped first), as every caller
// does; a caller whose own lost deletes it, and nothing else. EC2's IDs are
// not in creation order, so a create that takes longer than those five
// seconds can still leave two VPCs or Elastic IPs, each used by a caller:
// later calls keep the lowest ID, and destroy removes both.
//
// # IMDSv2 and hop limits
//
// Every instance requires IMDSv2 session tokens (HttpTokens required), so
// a server-side request forgery that can only GET cannot read credentials.
// The token PUT's response leaves with an IP TTL equal to the hop limit.
// On workers the limit is 1: it reaches the host, but not a pod behind a
// veth and bridge, so workloads on workers get neither the node's
// credentials nor its user data. On the control plane it is 2 by default,
// so that the agent can reach the control-plane role from an ordinary pod
// network namespace. The cost is that every pod scheduled on the control
// plane can reach IMDS too. Two things limit that: the control plane's
// bootstrap files (the join token, and the CA key when the seed made one)
// are not in its user data but in the cluster's bucket, fetched with a
// presigned URL that expires after an hour; and the role can do only what
// agent-policy.json allows. manifests/agent runs the agent on the pod
// network (a leader and a standby share the control-plane node, where host
// ports would clash), so the registry keeps 2. An agent on the host network
// would need only 1, which would close IMDS to the control plane's pods;
// Seed's control plane is not tainted, so workloads do run there.
//
// # Machines
//
// User data is a bash script, gzipped (cloud-init recognises gzip and
// unpacks it; no MIME multipart is needed for one part) and base64-encoded;
// EC2's 16 KiB limit applies to the gzipped bytes and is checked before the
// call. It reads instance ID, zone and launch index from IMDSv2, writes
// /var/lib/seed/provider-id (aws:///<zone>/<instance-id>), sets the hostname
// to the machine name, installs containerd.io (Docker's Debian repository)
// and kubelet, kubeadm and kubectl pinned to the requested version from
// pkgs.k8s.io's vX.Y repository, imports the staged images of the
// machine's role (see below), writes the bootstrap files and the script to
// /var/lib/seed/bootstrap/script, and runs it once. It never traces or
// echoes what it writes; the provider never logs user data or URLs.
//
// One RunInstances can start several machines: each instance finds its
// name, and its bootstrap, by its AMI launch index. Single launches carry
// the seed.dev/machine and Name tags; batch launches carry the names, in
// launch-index order, in seed.dev/machines.0, .1... tags (256 characters
// each), from which ListMachines reads the name of every instance. A
// scale-up of N workers of one pool is spread over at most three subnets,
// one RunInstances each (MinCount 1, so a zone short of capacity launches
// what it can and the rest moves on), and costs min(N, 3) EC2 calls once
// the network, instance type and image are known (four Describe calls,
// once per process).
//
// Each RunInstances carries a ClientToken computed from the cluster and the
// sorted names of the launch (and a generation, bumped only when EC2 answers
// a token with instances that have all terminated, since EC2 remembers a
// token for 24 hours after): asking again, from a retry or a restarted
// agent that never recorded the answer, returns the same instances. The
// token does not depend on the subnet, because EC2 keeps a token only for a
// request that succeeded; a token that did succeed elsewhere answers
// IdempotentParameterMismatch, after which the provider adopts the
// instances it finds with the client-token filter. Launches are tagged at
// creation (TagSpecifications), so an instance is never an orphan. If a
// restarted executor batches the same names differently while EC2 does not
// yet list the first launch, a name can get two instances; ListMachines
// keeps the oldest and terminates the rest.
//
// Capacity: InsufficientInstanceCapacity, InsufficientHostCapacity,
// InsufficientFreeAddressesInSubnet and Unsupported move the launch to the
// next subnet; when none is left the error is providers.KindCapacity.
// Quota errors (VcpuLimitExceeded, InstanceLimitExceeded) are KindCapacity
// at once. Throttling the retryer could not absorb is KindThrottled.
//
// Eventual consistency: an instance EC2 does not list yet, right after
// this process launched it, is reported as Pending for two minutes; one it
// terminated is reported as Deleting; TerminateInstances answering
// InvalidInstanceID.NotFound for a fresh ID is retried with backoff; calls
// naming what EnsureInfrastructure just created are retried on
// Invalid...NotFound for up to a minute; and RunInstances within two
// minutes of EnsureInfrastructure is retried on InvalidParameterValue (an
// instance profile IAM has not propagated) and Invalid...NotFound.
//
// ListMachines is one DescribeInstances, filtered by both ownership tags and
// every state but terminated, paginated, and answered from memory for
// ListTTL (30s) unless this provider wrote since: an idle agent makes at
// most two EC2 calls a minute.
//
// Destroy removes, in order: instances (waiting until they terminate; the
// VIP, if a control plane had it, is freed with its interface), the
// Elastic IP, the endpoint's holder interface, the internet gateway, subnets, the
// route table, security groups, the VPC, instance profiles and roles (only
// those tagged as the cluster's), and the bucket's objects (staged images
// and control-plane bootstraps) and the bucket. It never names the backup
// bucket, which outlives the cluster (backupstore.go); DeleteBackupStore
// removes that one, only when asked.
// Deletions that wait on another (DependencyViolation, an interface still
// in use) are retried for up to five minutes; everything else that fails
// is collected and returned together, and running Destroy again finishes
// the job.
//
// # Staged images
//
// There is no registry. `seed up` exports the agent image and the pod
// network image (seednet) from the local Docker engine and stages them
// with StageImage in the cluster's bucket: the agent under
// images/control-plane/ (control planes only), seednet under images/all/
// (every machine). A control plane imports the images under both
// prefixes, a worker those under images/all/. The user data downloads
// each with curl --retry through a presigned GET URL valid for an hour,
// before anything else, and imports it with `ctr -n k8s.io images import`
// once containerd runs, before the bootstrap script. The download comes
// first because a URL presigned with temporary credentials (the agent's
// instance profile) stops working when they expire, which can be sooner
// than the hour.
//
// A process that staged images knows their keys. Any other (the agent,
// launching workers with the control-plane role's credentials) lists
// images/all/ with ListObjectsV2 and reuses the answer for five minutes;
// presigning is local, once per image per launch. Images cost S3 calls,
// never EC2 calls, so the EC2 budgets above hold. If the bucket is
// missing, or holds nothing under images/all/, workers launch anyway and
// the provider logs a warning: without the pod network image their Nodes
// stay NotReady.
//
// A URL presigned with temporary credentials is about 1.5 KB and does not
// compress. Batches are split until user data, URLs included, fits 16 KiB;
// a batch of twenty workers, each with its own join configuration, and two
// staged images takes about 6.5 KB gzipped.
//
// MachineSpec.Images is ignored (Capabilities.ShipsImages is false): the
// nodes pull Kubernetes' images from its registry, and Seed's own images
// (agent, pod network) are the staged ones above.
//
// # Pod network
//
// The seed gives the control plane seednet's manifest with the vxlan
// backend, which the control plane applies after kubeadm init. A VPC drops
// packets addressed to pod IPs at its source/destination checks, so pod
// traffic between nodes travels in VXLAN (UDP 4789) between node
// addresses. The nodes' security group allows all traffic between its
// members, VXLAN included: source/destination checks stay on and no route
// is added to the VPC.
package aws
