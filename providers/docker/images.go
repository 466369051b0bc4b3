package docker

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
)

// LabelPreloadedImages on a node image lists, space-separated and
// normalized (normalizeImageRef), the images its containerd holds;
// hack/build-node-image.sh sets it. A node image without it is taken to
// hold none, so every image a machine asks for is shipped.
const LabelPreloadedImages = "dev.seed.preloaded"

// normalizeImageRef names an image as containerd does: a registry host
// (docker.io by default, with library/ for one-word names) and a tag
// (latest by default) unless a digest is given. Keep in step with
// normalize in hack/build-node-image.sh.
func normalizeImageRef(ref string) string {
	if !strings.Contains(ref, "/") {
		ref = "docker.io/library/" + ref
	} else if first := ref[:strings.Index(ref, "/")]; !strings.ContainsAny(first, ".:") && first != "localhost" {
		ref = "docker.io/" + ref
	}
	if name := ref[strings.LastIndex(ref, "/")+1:]; !strings.ContainsAny(name, ":@") {
		ref += ":latest"
	}
	return ref
}

var unsafeFileChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// imageTarPath is where a shipped image lands on the machine: the boot
// script imports every tarball in bootstrap.ImagesDir into containerd.
func imageTarPath(normalized string) string {
	return bootstrap.ImagesDir + "/" + strings.Trim(unsafeFileChars.ReplaceAllString(strings.ToLower(normalized), "-"), "-") + ".tar"
}

// imagesToShip returns, normalized and sorted, the images of want that the
// node image does not preload, after checking the host engine has each.
func (p *provider) imagesToShip(ctx context.Context, op, nodeImage string, want []string) ([]string, error) {
	if len(want) == 0 {
		return nil, nil
	}
	node, err := p.engine.ImageInspect(ctx, nodeImage)
	if providers.IsNotFound(err) {
		return nil, providers.NewError(providers.KindInvalid, op, fmt.Errorf("node image %s is not in the Docker engine: build it with hack/build-images.sh", nodeImage))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	preloaded := map[string]bool{}
	for _, ref := range strings.Fields(node.Labels[LabelPreloadedImages]) {
		preloaded[ref] = true
	}
	seen := map[string]bool{}
	var ship []string
	for _, ref := range want {
		n := normalizeImageRef(ref)
		if preloaded[n] || seen[n] {
			continue
		}
		seen[n] = true
		if _, err := p.engine.ImageInspect(ctx, ref); err != nil {
			if providers.IsNotFound(err) {
				return nil, providers.NewError(providers.KindInvalid, op, fmt.Errorf(
					"image %s, which the machine needs and node image %s lacks, is not in the Docker engine: "+
						"build it (hack/build-images.sh VERSION for Kubernetes' images, hack/build-agent-image.sh for the agent's) or pull it", ref, nodeImage))
			}
			return nil, fmt.Errorf("%s: inspecting image %s: %w", op, ref, err)
		}
		ship = append(ship, ref)
	}
	sort.Strings(ship)
	return ship, nil
}

// shipImages copies each image, exported from the host engine, into the
// created container's bootstrap.ImagesDir. A tar entry needs its size
// first, and the agent that calls this has no scratch disk and should not
// hold an image in memory: each image is exported twice, once to count it.
func (p *provider) shipImages(ctx context.Context, id string, refs []string) error {
	for _, ref := range refs {
		size, err := p.exportedSize(ctx, ref)
		if err != nil {
			return err
		}
		rc, err := p.engine.ImageSave(ctx, ref)
		if err != nil {
			return fmt.Errorf("exporting image %s: %w", ref, err)
		}
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg, Name: strings.TrimPrefix(imageTarPath(normalizeImageRef(ref)), "/"),
				Mode: 0o600, Size: size, ModTime: p.now(), Format: tar.FormatPAX,
			})
			if err == nil {
				var n int64
				n, err = io.Copy(tw, rc)
				if err == nil && n != size {
					err = fmt.Errorf("the export of %s changed size (%d, then %d bytes)", ref, size, n)
				}
			}
			if err == nil {
				err = tw.Close()
			}
			_ = rc.Close()
			pw.CloseWithError(err)
		}()
		p.log.Info("Shipping image to machine: its node image lacks it", "container", shortID(id), "image", ref, "bytes", size)
		start := time.Now()
		err = p.engine.CopyToContainer(ctx, id, "/", pr)
		_ = pr.CloseWithError(err)
		if err != nil {
			return fmt.Errorf("shipping image %s: %w", ref, err)
		}
		p.log.V(1).Info("Shipped image", "image", ref, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (p *provider) exportedSize(ctx context.Context, ref string) (int64, error) {
	rc, err := p.engine.ImageSave(ctx, ref)
	if err != nil {
		return 0, fmt.Errorf("exporting image %s: %w", ref, err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return 0, providers.NewError(providers.KindTransient, "exporting image "+ref, err)
	}
	return n, nil
}
