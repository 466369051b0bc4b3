package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/seedhq/seed/pkg/bootstrap"
)

// upgradeAddons moves kube-proxy and CoreDNS to what kubeadm deploys with
// the cluster's version, once every Node runs it: kube-proxy may not be
// newer than any API server, and a node image holds its own version's
// images, so until the last machine is replaced the old ones stay (as
// Cluster API does it, after the control plane; kubeadm upgrade apply's
// addon phase, here run by the agent). Patching what is already there
// changes nothing.
//
// Once both are found at the version (or absent), they are not read again
// until the version changes or the agent restarts: an idle pass then
// costs them no request.
func (r *Reconciler) upgradeAddons(ctx context.Context, ps *pass) {
	version := ps.spec.Spec.KubernetesVersion
	if r.addonsAt == version {
		return
	}
	for _, n := range ps.nodes {
		if n.Status.NodeInfo.KubeletVersion != version {
			return
		}
	}
	settled := true
	apps := r.opts.Client.AppsV1()
	type addon struct {
		kind, name, container, tag string
		// spec is JSON fields set beside the new image, each followed by a comma.
		spec  string
		get   func() ([]corev1.Container, error)
		patch func([]byte) error
	}
	addons := []addon{
		// kube-proxy has no readiness probe, so a new pod counts as
		// available once it starts, before it has written its rules; the
		// DaemonSet would then restart the next node's at once, and every
		// node's NodePorts can be down together for a moment.
		// minReadySeconds keeps the restarts one node at a time, each given
		// time to sync.
		{kind: "DaemonSet", name: "kube-proxy", container: "kube-proxy", tag: version, spec: `"minReadySeconds":10,`,
			get: func() ([]corev1.Container, error) {
				ds, err := apps.DaemonSets(metav1.NamespaceSystem).Get(ctx, "kube-proxy", metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				return ds.Spec.Template.Spec.Containers, nil
			},
			patch: func(b []byte) error {
				_, err := apps.DaemonSets(metav1.NamespaceSystem).Patch(ctx, "kube-proxy", types.StrategicMergePatchType, b, metav1.PatchOptions{})
				return err
			}},
		{kind: "Deployment", name: "coredns", container: "coredns", tag: bootstrap.CoreDNSVersion(version),
			get: func() ([]corev1.Container, error) {
				d, err := apps.Deployments(metav1.NamespaceSystem).Get(ctx, "coredns", metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				return d.Spec.Template.Spec.Containers, nil
			},
			patch: func(b []byte) error {
				_, err := apps.Deployments(metav1.NamespaceSystem).Patch(ctx, "coredns", types.StrategicMergePatchType, b, metav1.PatchOptions{})
				return err
			}},
	}
	for _, a := range addons {
		if a.tag == "" {
			r.blocked(ps.specCM, "addon/"+a.name, "AddonNotUpgraded",
				fmt.Sprintf("%s %s is left as it is: Seed does not know which version kubeadm deploys with Kubernetes %s", a.kind, a.name, version))
			settled = false
			continue
		}
		containers, err := a.get()
		if apierrors.IsNotFound(err) {
			continue // not installed: nothing to move
		}
		if err != nil {
			ps.errs = append(ps.errs, fmt.Errorf("reading %s kube-system/%s: %w", a.kind, a.name, err))
			settled = false
			continue
		}
		for _, c := range containers {
			if c.Name != a.container {
				continue
			}
			repo, tag := c.Image, ""
			if i := strings.LastIndex(c.Image, ":"); i > strings.LastIndex(c.Image, "/") {
				repo, tag = c.Image[:i], c.Image[i+1:]
			}
			if tag == a.tag {
				continue
			}
			image := repo + ":" + a.tag
			patch := fmt.Sprintf(`{"spec":{%s"template":{"spec":{"containers":[{"name":%q,"image":%q}]}}}}`, a.spec, a.container, image)
			err := a.patch([]byte(patch))
			r.countAction("UpgradeAddon", err)
			if err != nil {
				ps.errs = append(ps.errs, fmt.Errorf("upgrading %s kube-system/%s to %s: %w", a.kind, a.name, image, err))
				settled = false
				continue
			}
			r.opts.Logger.Info("Upgraded add-on", "kind", a.kind, "name", a.name, "from", c.Image, "to", image)
			r.event(ps.specCM, corev1.EventTypeNormal, "AddonUpgraded", "%s kube-system/%s: %s → %s, every machine runs Kubernetes %s",
				a.kind, a.name, c.Image, image, version)
		}
	}
	if settled {
		r.addonsAt = version
	}
}
