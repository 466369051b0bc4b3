package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/imageref"
	"github.com/seedhq/seed/pkg/kube"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/registry"
)

// LocalEngine is where loaded images come from: the Docker engine the seed
// runs next to (registry.InspectLocalImage, registry.SaveLocalImages).
type LocalEngine interface {
	// Has fails, NotFound, when the engine has no image ref.
	Has(ctx context.Context, ref string) error
	// Save exports refs as one `docker save` tar stream.
	Save(ctx context.Context, refs []string) (io.ReadCloser, error)
}

type dockerEngine struct{}

func (dockerEngine) Has(ctx context.Context, ref string) error {
	_, err := registry.InspectLocalImage(ctx, ref)
	return err
}

func (dockerEngine) Save(ctx context.Context, refs []string) (io.ReadCloser, error) {
	return registry.SaveLocalImages(ctx, refs)
}

// LocalDockerEngine is the Docker engine at the default socket.
func LocalDockerEngine() LocalEngine { return dockerEngine{} }

// LoadImagesOptions configure LoadImages.
type LoadImagesOptions struct {
	Config   *rest.Config
	Provider providers.Provider
	Engine   LocalEngine
	// Refs are the images, as the user typed them.
	Refs []string
	// Timeout bounds the wait for each machine's import.
	Timeout time.Duration
	Out     io.Writer
}

// ParseImageRefs checks every reference and returns them parsed, or one
// error that names each one at fault.
func ParseImageRefs(refs []string) ([]imageref.Ref, error) {
	if len(refs) == 0 {
		return nil, errors.New("name at least one image")
	}
	var out []imageref.Ref
	var problems []string
	seen := map[string]bool{}
	for _, s := range refs {
		r, err := imageref.Parse(s)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if !seen[r.Normalized()] {
			seen[r.Normalized()] = true
			out = append(out, r)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing loaded: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

// LoadImages copies images from the local engine into every running
// machine's containerd and records them in ConfigMap seed-images, from
// which the agent gives them to every machine it creates later. Nothing is
// copied unless every reference is valid and in the local engine. The
// record is written last, so a failed load leaves it as it was; run again
// to retry (loading is idempotent).
func LoadImages(ctx context.Context, o LoadImagesOptions) error {
	pr := newProgress(o.Out)
	refs, err := ParseImageRefs(o.Refs)
	if err != nil {
		return err
	}
	var missing []string
	for _, r := range refs {
		err := o.Engine.Has(ctx, r.String())
		switch {
		case providers.IsNotFound(err):
			missing = append(missing, r.String())
		case err != nil:
			return fmt.Errorf("nothing loaded: looking up %s in the local Docker engine: %w", r, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("nothing loaded: the local Docker engine has no image %s (docker image ls; docker pull or docker build it first)",
			strings.Join(missing, ", "))
	}
	core, err := kube.NewCore(o.Config)
	if err != nil {
		return err
	}
	if _, err := readImages(ctx, core); err != nil {
		return fmt.Errorf("nothing loaded: %w", err)
	}
	machines, err := o.Provider.ListMachines(ctx)
	if err != nil {
		return fmt.Errorf("nothing loaded: listing the cluster's machines: %w", err)
	}
	var running []string
	for _, m := range machines {
		if m.Phase == providers.PhaseRunning {
			running = append(running, m.Name)
		}
	}
	slices.Sort(running)

	names, normalized := make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		names[i], normalized[i] = r.String(), r.Normalized()
	}
	if len(running) > 0 {
		archive, size, err := saveToTemp(ctx, o.Engine, names)
		if err != nil {
			return fmt.Errorf("nothing loaded: %w", err)
		}
		defer os.Remove(archive.Name())
		defer archive.Close()
		for _, m := range running {
			s := pr.start("Loading %s into %s (%s)", strings.Join(names, ", "), m, humanSize(size))
			if _, err := archive.Seek(0, io.SeekStart); err != nil {
				return s.fail(err)
			}
			mctx, cancel := context.WithTimeout(ctx, o.Timeout)
			err := o.Provider.LoadImage(mctx, m, providers.ImageArchive{Refs: normalized, Data: archive, Size: size})
			cancel()
			if err != nil {
				return s.fail(fmt.Errorf("loading into %s: %w (the images are not recorded; run again to retry)", m, err))
			}
			s.done()
		}
	}
	s := pr.start("Recording the images in %s/%s for the machines the agent creates", v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap)
	if err := updateImages(ctx, core, func(cur []string) []string { return MergeImages(cur, names) }); err != nil {
		return s.fail(err)
	}
	s.done()
	return nil
}

func humanSize(n int64) string {
	const mib = 1 << 20
	if n < mib {
		return fmt.Sprintf("%d KiB", (n+1023)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}

// saveToTemp saves the images once, to a file, since the archive goes to
// every machine and the provider needs its size.
func saveToTemp(ctx context.Context, e LocalEngine, refs []string) (*os.File, int64, error) {
	rc, err := e.Save(ctx, refs)
	if err != nil {
		return nil, 0, fmt.Errorf("exporting %s from the local Docker engine: %w", strings.Join(refs, ", "), err)
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "seed-load-*.tar")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, rc)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, fmt.Errorf("exporting %s from the local Docker engine: %w", strings.Join(refs, ", "), err)
	}
	return f, n, nil
}

// LoadedImages lists the recorded images.
func LoadedImages(ctx context.Context, cfg *rest.Config) ([]string, error) {
	core, err := kube.NewCore(cfg)
	if err != nil {
		return nil, err
	}
	return readImages(ctx, core)
}

// ForgetImage removes ref from the record, so machines created from now on
// do not get it; it reports whether the record held it. Machines that have
// the image keep it.
func ForgetImage(ctx context.Context, cfg *rest.Config, ref string) (bool, error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return false, err
	}
	core, err := kube.NewCore(cfg)
	if err != nil {
		return false, err
	}
	found := false
	err = updateImages(ctx, core, func(cur []string) []string {
		out := ForgetFrom(cur, r)
		found = len(out) != len(cur)
		return out
	})
	return found, err
}

// MergeImages adds refs to the recorded list cur, leaving out those it has
// already (by the name containerd gives them), sorted.
func MergeImages(cur, refs []string) []string {
	have := map[string]bool{}
	out := make([]string, 0, len(cur)+len(refs))
	for _, s := range slices.Concat(cur, refs) {
		key := s
		if r, err := imageref.Parse(s); err == nil {
			key = r.Normalized()
		}
		if s == "" || have[key] {
			continue
		}
		have[key] = true
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// ForgetFrom returns cur without r, however it was written.
func ForgetFrom(cur []string, r imageref.Ref) []string {
	var out []string
	for _, s := range cur {
		if p, err := imageref.Parse(s); err == nil && p.Normalized() == r.Normalized() {
			continue
		}
		out = append(out, s)
	}
	return out
}

// parseImageList reads the ConfigMap's list: one reference a line, blank
// lines and surrounding space ignored, as the agent reads it.
func parseImageList(data string) []string {
	var out []string
	for _, line := range strings.Split(data, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func readImages(ctx context.Context, core *kube.Core) ([]string, error) {
	cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the loaded images %s/%s: %w", v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap, err)
	}
	return parseImageList(cm.Data[v1alpha1.ImagesKey]), nil
}

// updateImages rewrites the record with change, retrying when another
// writer got there first.
func updateImages(ctx context.Context, core *kube.Core, change func([]string) []string) error {
	const attempts = 5
	for i := 0; ; i++ {
		cm, err := core.GetConfigMap(ctx, v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading %s/%s: %w", v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap, err)
		}
		if !exists {
			cm = &kube.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ImagesConfigMap, Namespace: v1alpha1.DefaultNamespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "seed"}}}
		}
		cur := parseImageList(cm.Data[v1alpha1.ImagesKey])
		next := change(cur)
		if exists && slices.Equal(cur, next) || !exists && len(next) == 0 {
			return nil
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[v1alpha1.ImagesKey] = strings.Join(next, "\n") + "\n"
		if len(next) == 0 {
			cm.Data[v1alpha1.ImagesKey] = ""
		}
		if exists {
			_, err = core.UpdateConfigMap(ctx, cm)
		} else {
			_, err = core.CreateConfigMap(ctx, cm)
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && i < attempts {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing %s/%s: %w", v1alpha1.DefaultNamespace, v1alpha1.ImagesConfigMap, err)
		}
		return nil
	}
}
