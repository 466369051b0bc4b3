package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/seedhq/seed/manifests"
	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/pkg/pki"
	"github.com/seedhq/seed/providers"
)

// UpOptions configure Up.
type UpOptions struct {
	// Spec is the cluster to create (defaulted and valid), and SpecYAML the
	// document it came from, which goes into the spec ConfigMap as written.
	Spec     *v1alpha1.Cluster
	SpecYAML []byte
	// Provider is the cluster's provider.
	Provider providers.Provider
	// AgentImage is the agent image reference (content- or version-tagged).
	// A registry image the provider declares (Capabilities().Agent.Image,
	// which the nodes pull) replaces it.
	AgentImage string
	// NetworkImage is the pod network image (seednet). Providers whose
	// machines boot without preloaded images (AWS) have it staged on every
	// machine and need it; the Docker provider's node image carries its own.
	NetworkImage string
	// ImageSource exports a local image as a `docker save` tarball: the
	// agent image, shipped to the control-plane machine unless the nodes
	// pull it, and the network image where the provider stages images. Nil
	// ships neither, and the nodes must pull the agent image.
	ImageSource func(ctx context.Context, ref string) (io.ReadCloser, error)
	// KubeconfigPath is the kubeconfig file to merge the cluster's context into.
	KubeconfigPath string
	// Timeout bounds the whole bring-up (default 10m).
	Timeout time.Duration
	// Progress receives one line per step.
	Progress io.Writer
	// RestoreFrom, when set, is the backup (a name, or LatestBackup) to
	// restore once the agent has the cluster: the lifeboat, for a cluster
	// brought up again on the store of one that is gone. It needs backups
	// enabled in the spec. A cluster that holds a restore by it already
	// gets no other.
	RestoreFrom string
}

// UpResult says what Up did.
type UpResult struct {
	// Created is false when the cluster existed already and nothing changed.
	Created bool
	// SpecError, when set, is why the agent rejects the cluster's live spec
	// (a bad edit of the spec ConfigMap): the agent keeps acting on the last
	// spec it accepted, and Up succeeds without changing anything.
	SpecError string
	// Context is the kubeconfig context of the cluster.
	Context string
	// Restore is what RestoreFrom restored.
	Restore *RestoreResult
}

// ControlPlaneMachineName is the name of a cluster's first control-plane
// machine. It is not "<cluster>-control-plane", the name of the API server
// endpoint, so that a machine's name never resolves where the endpoint does
// (on Docker, container names and aliases share one DNS). Clusters made
// before kept that name for their first control plane.
func ControlPlaneMachineName(cluster string) string { return cluster + "-control-plane-1" }

// agentImagePath is where the agent image tarball lands on the control plane;
// the bootstrap script imports every tarball in that folder into containerd
// before kubeadm runs.
const agentImagePath = bootstrap.ImagesDir + "/seed-agent.tar"

// networkManifestPath is the pod network's manifest on a control plane whose
// provider stages images; the control plane applies it before the agent's.
const networkManifestPath = bootstrap.ManifestsDir + "/10-seednet.yaml"

// Up creates the cluster's one control-plane machine if it does not exist,
// installs the agent and its spec, waits until the agent has adopted the
// machine it runs on (the hand-off), and writes the kubeconfig. Run again on
// a healthy cluster, it changes nothing.
func Up(ctx context.Context, o UpOptions) (UpResult, error) {
	o = defaulted(o)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c := o.Spec
	name := c.Metadata.Name
	p := newProgress(o.Progress)
	res := UpResult{Context: pki.ContextName(name)}
	// What the machines cannot boot without is checked before anything
	// is created.
	if err := checkImages(o); err != nil {
		return res, err
	}
	if o.RestoreFrom != "" && !c.Spec.Backup.Enabled {
		return res, fmt.Errorf("--restore-from needs backups: the spec of cluster %s does not set spec.backup.enabled: true, so no Velero would be installed to restore with", name)
	}

	step := p.start("Checking the spec against %s", o.Provider.Name())
	if err := o.Provider.Preflight(ctx); err != nil {
		return res, step.fail(fmt.Errorf("preflight: %w", err))
	}
	step.done()
	step = p.start("Preparing %s infrastructure for cluster %q", o.Provider.Name(), name)
	infra, err := o.Provider.EnsureInfrastructure(ctx)
	if err != nil {
		return res, step.fail(fmt.Errorf("preparing infrastructure: %w", err))
	}
	step.done()
	if c.Spec.Backup.Enabled && o.Provider.Capabilities().KeepsBackupStore {
		// Before the control plane, so the agent finds the store at once;
		// started again if it was found stopped.
		step = p.start("Starting the backup store of cluster %q", name)
		if _, err := o.Provider.EnsureBackupStore(ctx); err != nil {
			return res, step.fail(fmt.Errorf("starting the backup store: %w", err))
		}
		step.done()
	}

	cpName := ControlPlaneMachineName(name)
	machines, err := o.Provider.ListMachines(ctx)
	if err != nil {
		return res, fmt.Errorf("listing the cluster's machines: %w", err)
	}
	var existing *providers.Machine
	for i := range machines {
		if machines[i].Role == providers.RoleControlPlane {
			existing = &machines[i]
		}
	}

	var admin []byte
	if existing == nil {
		res.Created = true
		step = p.start("Creating control-plane machine %s (Kubernetes %s)", cpName, c.Spec.KubernetesVersion)
		admin, err = createControlPlane(ctx, o, infra, cpName)
		if err != nil {
			return res, step.fail(err)
		}
		step.done()
	} else {
		cpName = existing.Name
		p.note("Control-plane machine %s exists (%s)", cpName, existing.Phase)
		admin, err = existingAdmin(ctx, o, infra, cpName)
		if err != nil {
			return res, err
		}
	}

	cfg, err := clientcmd.RESTConfigFromKubeConfig(admin)
	if err != nil {
		return res, fmt.Errorf("using the cluster's kubeconfig: %w", err)
	}
	cfg.Timeout = 15 * time.Second
	// client-go's default limit (5 requests a second, bursts of 10) spread
	// the install's discovery, reads and creates over two and a half
	// seconds of the hand-off; the seed makes a few dozen requests in all.
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kube.NewCore(cfg)
	if err != nil {
		return res, err
	}

	step = p.start("Waiting for the API server at %s", infra.ExternalEndpoint)
	if err := waitAPIServer(ctx, client); err != nil {
		return res, step.fail(err)
	}
	step.done()

	step = p.start("Installing the agent (%s) and the cluster spec", agentImageOf(o).ref)
	created, err := installAgent(ctx, cfg, o)
	if err != nil {
		return res, step.fail(err)
	}
	switch {
	case created > 0:
		res.Created = true
		step.doneWith("%d objects created", created)
	case res.Created:
		step.doneWith("applied by the control plane at boot")
	default:
		step.doneWith("all present, nothing changed")
	}

	step = p.start("Waiting for the agent to adopt machine %s", cpName)
	res.SpecError, err = waitHandOff(ctx, client, cpName, step)
	if err != nil {
		return res, step.fail(err)
	}
	step.done()
	if res.SpecError != "" {
		p.warn("The agent rejects the cluster's live spec and keeps acting on the last one it accepted: %s\n"+
			"   Fix it with: kubectl --context %s -n %s edit configmap %s",
			strings.ReplaceAll(res.SpecError, "\n", "; "), res.Context, v1alpha1.DefaultNamespace, v1alpha1.SpecConfigMap)
	}

	if err := MergeKubeconfig(o.KubeconfigPath, admin); err != nil {
		return res, err
	}
	p.note("Kubeconfig context %q written to %s", res.Context, o.KubeconfigPath)

	if o.RestoreFrom != "" {
		b, err := NewBackups(cfg, o.Progress)
		if err != nil {
			return res, err
		}
		r, err := b.Lifeboat(ctx, o.RestoreFrom)
		if err != nil {
			return res, fmt.Errorf("restoring %s into cluster %s: %w", o.RestoreFrom, name, err)
		}
		res.Restore = &r
	}
	return res, nil
}

// createControlPlane renders the control plane's bootstrap around a CA the
// seed generates (so it can sign its own admin credentials), creates the
// machine, and returns the admin kubeconfig.
func createControlPlane(ctx context.Context, o UpOptions, infra providers.Infrastructure, cpName string) ([]byte, error) {
	c := o.Spec
	caps := o.Provider.Capabilities()
	caCert, caKey, err := pki.NewCA("kubernetes", 10*365*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("creating the cluster CA: %w", err)
	}
	b, err := bootstrap.ControlPlane(bootstrap.Cluster{
		Name:                 c.Metadata.Name,
		KubernetesVersion:    c.Spec.KubernetesVersion,
		ControlPlaneEndpoint: infra.ControlPlaneEndpoint,
		CertSANs:             infra.CertSANs,
		CACert:               caCert,
		CAKey:                caKey,
		PullImages:           !caps.PreloadedImages,
	}, bootstrap.Machine{
		Name:              cpName,
		KubernetesVersion: c.Spec.KubernetesVersion,
		Labels:            map[string]string{providers.LabelPool: v1alpha1.ControlPlanePool},
	})
	if err != nil {
		return nil, fmt.Errorf("rendering the control-plane bootstrap: %w", err)
	}
	// The control plane applies the agent's manifests itself right after
	// kubeadm init, so the agent starts while the seed is still waiting for
	// the API server instead of after it.
	objs, err := agentManifests(o)
	if err != nil {
		return nil, err
	}
	doc, err := manifests.YAML(objs)
	if err != nil {
		return nil, err
	}
	b.Files = append(b.Files, providers.File{Path: bootstrap.ManifestsDir + "/50-seed-agent.yaml", Mode: 0o600, Content: doc})
	agent := agentImageOf(o)
	type shipped struct {
		img providers.StagedImage
		ref string
	}
	var stage []shipped
	if !caps.PreloadedImages {
		// Machines boot without the pod network: every machine gets its
		// image staged, and the control plane applies its manifest before
		// the agent's (workers, which the agent creates later, need it;
		// only the control plane runs the agent).
		network, err := manifests.Network(o.NetworkImage, manifests.NetworkVXLAN)
		if err != nil {
			return nil, err
		}
		b.Files = append(b.Files, providers.File{Path: networkManifestPath, Mode: 0o600, Content: network})
		stage = append(stage, shipped{providers.StagedImage{Name: "network", Workers: true}, o.NetworkImage})
	}
	if agent.ship {
		if caps.StagesImages {
			stage = append([]shipped{{providers.StagedImage{Name: "agent"}, agent.ref}}, stage...)
		} else {
			img, err := readImage(ctx, o.ImageSource, "agent", agent.ref)
			if err != nil {
				return nil, err
			}
			b.Files = append(b.Files, providers.File{Path: agentImagePath, Mode: 0o600, Content: img})
		}
	}
	// Images are too big for user data: the provider stores them where the
	// machines' first boot fetches them.
	for _, s := range stage {
		data, err := readImage(ctx, o.ImageSource, s.img.Name, s.ref)
		if err != nil {
			return nil, err
		}
		s.img.Data, s.img.Size = bytes.NewReader(data), int64(len(data))
		if err := o.Provider.StageImage(ctx, s.img); err != nil {
			return nil, fmt.Errorf("staging the %s image %s: %w", s.img.Name, s.ref, err)
		}
	}
	var images []string
	if c.Spec.Backup.Enabled {
		// Velero runs on the control plane, from images Seed builds: a
		// provider that ships images gives them to it (the agent gives
		// them to control planes it makes later).
		images = manifests.VeleroImages()
	}
	if _, err := o.Provider.CreateMachine(ctx, providers.MachineSpec{
		Name:              cpName,
		Pool:              v1alpha1.ControlPlanePool,
		Role:              providers.RoleControlPlane,
		MachineType:       c.Spec.ControlPlane.MachineType,
		KubernetesVersion: c.Spec.KubernetesVersion,
		Bootstrap:         b,
		Images:            images,
	}); err != nil {
		return nil, fmt.Errorf("creating machine %s: %w", cpName, err)
	}
	// kubeadm binds the group kubeadm:cluster-admins to cluster-admin; unlike
	// system:masters, that grant can be revoked.
	cert, key, err := pki.SignClient(caCert, caKey, "seed-admin", []string{"kubeadm:cluster-admins"}, 365*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("signing admin credentials: %w", err)
	}
	return pki.AdminKubeconfig(c.Metadata.Name, infra.ExternalEndpoint, caCert, cert, key)
}

// defaulted fills in the defaults.
func defaulted(o UpOptions) UpOptions {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// agentImage is how the agent's image reaches the control plane.
type agentImage struct {
	ref string
	// pullPolicy is the agent container's imagePullPolicy.
	pullPolicy string
	// ship: the seed exports the image from ImageSource and ships it,
	// staged by the provider or in the control plane's bootstrap.
	ship bool
}

// agentImageOf decides where the agent's image comes from: a registry
// image the provider declares is pulled by the nodes; otherwise the seed
// ships its own, which no registry holds, so the kubelet must never try to
// pull it.
func agentImageOf(o UpOptions) agentImage {
	if ref := o.Provider.Capabilities().Agent.Image; ref != "" {
		return agentImage{ref: ref, pullPolicy: registryPullPolicy(ref)}
	}
	if o.ImageSource == nil {
		return agentImage{ref: o.AgentImage, pullPolicy: registryPullPolicy(o.AgentImage)}
	}
	return agentImage{ref: o.AgentImage, pullPolicy: "Never", ship: true}
}

// registryPullPolicy is Kubernetes' own default for an image a node pulls:
// Always when the reference can move (tag latest, or no tag), IfNotPresent
// when it names a fixed tag or digest.
func registryPullPolicy(ref string) string {
	if strings.Contains(ref, "@") {
		return "IfNotPresent"
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	if _, tag, ok := strings.Cut(name, ":"); ok && tag != "latest" {
		return "IfNotPresent"
	}
	return "Always"
}

// checkImages makes sure that, when the provider's machines boot without
// preloaded images, the provider stages images and the seed has what it
// must stage: the network image, and a way to export images.
func checkImages(o UpOptions) error {
	caps := o.Provider.Capabilities()
	if caps.PreloadedImages {
		return nil
	}
	if !caps.StagesImages {
		return fmt.Errorf("provider %s neither preloads images on its machines nor stages them: the pod network has no way onto them", o.Provider.Name())
	}
	if o.NetworkImage == "" {
		return errors.New("the pod network image is not set: build it with `make images` and pass --network-image $(cat bin/network-image)")
	}
	if _, err := manifests.Network(o.NetworkImage, manifests.NetworkVXLAN); err != nil {
		return err
	}
	if o.ImageSource == nil {
		return fmt.Errorf("provider %s ships images to its machines, but no image source was given to export them from", o.Provider.Name())
	}
	return nil
}

func readImage(ctx context.Context, src func(context.Context, string) (io.ReadCloser, error), what, ref string) ([]byte, error) {
	rc, err := src(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("exporting the %s image %s (build it with `make images`): %w", what, ref, err)
	}
	defer rc.Close()
	img, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("exporting the %s image %s: %w", what, ref, err)
	}
	return img, nil
}

// existingAdmin finds credentials for a cluster that exists: the kubeconfig
// context the seed wrote, or else the admin kubeconfig kubeadm left on the
// control-plane machine (where the provider reads files), pointed at the
// external endpoint.
func existingAdmin(ctx context.Context, o UpOptions, infra providers.Infrastructure, cpName string) ([]byte, error) {
	_, raw, ok, err := contextConfig(o.KubeconfigPath, o.Spec.Metadata.Name)
	if err != nil {
		return nil, err
	}
	if ok {
		return raw, nil
	}
	return ReadAdminKubeconfig(ctx, o.Provider, o.Spec.Metadata.Name, cpName, infra.ExternalEndpoint)
}

// ReadAdminKubeconfig reads kubeadm's admin kubeconfig from the control-plane
// machine, for providers that can read files from machines, and renames its
// context to the cluster's.
func ReadAdminKubeconfig(ctx context.Context, p providers.Provider, cluster, cpName, endpoint string) ([]byte, error) {
	if !p.Capabilities().ReadsFiles {
		return nil, fmt.Errorf("cluster %s exists but no kubeconfig context %q holds its credentials, and provider %s cannot fetch them from the machine",
			cluster, pki.ContextName(cluster), p.Name())
	}
	var raw []byte
	var err error
	// The file appears once kubeadm has written it; a machine that was just
	// created may not have it yet.
	for {
		raw, err = p.ReadFile(ctx, cpName, "/etc/kubernetes/admin.conf")
		if err == nil || !providers.IsNotFound(err) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for kubeadm to write the admin kubeconfig on %s: %w", cpName, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the admin kubeconfig from machine %s: %w", cpName, err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing the admin kubeconfig from machine %s: %w", cpName, err)
	}
	for _, cl := range cfg.Clusters {
		for _, ai := range cfg.AuthInfos {
			return pki.AdminKubeconfig(cluster, endpoint, cl.CertificateAuthorityData, ai.ClientCertificateData, ai.ClientKeyData)
		}
	}
	return nil, fmt.Errorf("the admin kubeconfig on machine %s holds no credentials", cpName)
}

func agentManifests(o UpOptions) ([]*unstructured.Unstructured, error) {
	needs := o.Provider.Capabilities().Agent
	img := agentImageOf(o)
	return manifests.Agent(manifests.Params{
		AgentImage:        img.ref,
		PullPolicy:        img.pullPolicy,
		SpecYAML:          o.SpecYAML,
		DockerSocket:      needs.HostDockerSocket,
		CredentialsSecret: needs.CredentialsSecret,
	})
}

// installAgent creates whichever of the agent's objects are missing. On a
// new cluster the control plane has applied them already, right after
// kubeadm init; this makes a rerun repair what was deleted.
func installAgent(ctx context.Context, cfg *rest.Config, o UpOptions) (int, error) {
	objs, err := agentManifests(o)
	if err != nil {
		return 0, err
	}
	creator, err := kube.NewCreator(cfg)
	if err != nil {
		return 0, err
	}
	var results []kube.Result
	err = retry(ctx, func() error {
		results, err = creator.CreateMissing(ctx, objs)
		return err
	})
	created := 0
	for _, r := range results {
		if r.Created {
			created++
		}
	}
	return created, err
}

func waitAPIServer(ctx context.Context, client *kube.Core) error {
	return retry(ctx, func() error {
		err := client.Ready(ctx)
		if err != nil {
			return err
		}
		// The seed's credentials work once kubeadm has bound the admin group.
		_, err = client.GetNamespace(ctx, metav1.NamespaceSystem)
		return err
	})
}

// waitHandOff waits until the agent's status lists the control-plane
// machine as managed, reporting what it is waiting for as it changes. It
// returns the agent's complaint about the live spec, if it has one: a
// cluster whose agent adopted it and then rejected an edit is up, and the
// agent acts on the last spec it accepted, so that is not a reason to wait.
func waitHandOff(ctx context.Context, client *kube.Core, cpName string, step *step) (specError string, err error) {
	last := ""
	err = retry(ctx, func() error {
		h := handOffState(ctx, client, cpName)
		if h.adopted {
			specError = h.specError
			return nil
		}
		if h.waiting != last {
			step.detail(h.waiting)
			last = h.waiting
		}
		return errors.New(h.waiting)
	})
	return specError, err
}

// handOff is what the agent's status says of the hand-off.
type handOff struct {
	// adopted: the agent manages the control-plane machine.
	adopted bool
	// specError is why the agent rejects the live spec, if it does.
	specError string
	// waiting says what is missing, until adopted.
	waiting string
}

func handOffState(ctx context.Context, client *kube.Core, cpName string) handOff {
	cm, err := client.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.StatusConfigMap)
	if apierrors.IsNotFound(err) {
		pods, perr := client.ListPods(ctx, v1alpha1.DefaultNamespace, "app.kubernetes.io/name=seed-agent")
		if perr != nil || len(pods.Items) == 0 {
			return handOff{waiting: "agent pod not scheduled yet"}
		}
		pod := pods.Items[0]
		for _, cs := range pod.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				return handOff{waiting: fmt.Sprintf("agent pod %s: %s %s", pod.Name, w.Reason, w.Message)}
			}
		}
		return handOff{waiting: fmt.Sprintf("agent pod %s is %s; no status yet", pod.Name, pod.Status.Phase)}
	}
	if err != nil {
		return handOff{waiting: fmt.Sprintf("reading agent status: %v", err)}
	}
	var st v1alpha1.ClusterStatus
	if err := yaml.Unmarshal([]byte(cm.Data[v1alpha1.StatusKey]), &st); err != nil {
		return handOff{waiting: fmt.Sprintf("agent status unreadable: %v", err)}
	}
	h := handOff{specError: st.SpecError}
	for _, m := range st.Machines {
		if m.Name == cpName && m.Managed {
			h.adopted = true
			return h
		}
	}
	switch {
	case st.SpecError != "":
		h.waiting = "agent rejected the spec: " + strings.ReplaceAll(st.SpecError, "\n", "; ")
	case st.LastError != "":
		h.waiting = "agent reports: " + st.LastError
	default:
		h.waiting = "agent has not adopted the machine yet"
	}
	return h
}

// retry calls f until it succeeds or ctx ends, returning f's last error.
func retry(ctx context.Context, f func() error) error {
	delay := 250 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
		// Everything waited on here is local and cheap to ask; a short
		// ceiling keeps the seed from sleeping past the moment it is done.
		if delay < 500*time.Millisecond {
			delay *= 2
		}
	}
}
