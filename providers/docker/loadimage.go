package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seedhq/seed/providers"
)

// The node image's contract for loading images into a running machine (see
// images/node/README.md): NAME.tar and then NAME.ready, listing the
// references the archive must yield, are dropped into loadDir; the node's
// seed-load-images.path starts an import, which writes NAME.result ("ok"
// or "failed", then containerd's output) and removes the other two.
const (
	loadDir    = "/var/lib/seed/images/load"
	loadScript = "/usr/local/bin/seed-load-images"
)

// loadPollInterval is how often LoadImage looks whether the node is done.
const loadPollInterval = 500 * time.Millisecond

// LoadImage implements providers.Provider: it copies the archive into the
// machine's container and waits, as long as ctx allows, for the node to
// import it into containerd (namespace k8s.io) and list every reference.
func (p *provider) LoadImage(ctx context.Context, machine string, img providers.ImageArchive) error {
	op := "loading images into machine " + machine
	c, err := p.engine.ContainerInspect(ctx, machine)
	if err != nil {
		return err
	}
	if c.Name != machine {
		return providers.NewError(providers.KindNotFound, op, fmt.Errorf("no container named %s", machine))
	}
	if err := p.owned(c); err != nil {
		return providers.NewError(providers.KindInvalid, op, err)
	}
	if c.State != "running" {
		return providers.NewError(providers.KindInvalid, op, fmt.Errorf("the machine is %s, not running", c.State))
	}
	if _, err := p.ReadFile(ctx, machine, loadScript); providers.IsNotFound(err) {
		return providers.NewError(providers.KindInvalid, op,
			fmt.Errorf("its node image has no %s: rebuild the node image (hack/build-images.sh) and replace the machine", loadScript))
	}

	name := "load-" + strconv.FormatInt(p.now().UnixNano(), 36)
	base := strings.TrimPrefix(loadDir, "/") + "/" + name
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeSingleFileTar(pw, base+".tar", img.Size, img.Data, p.now()))
	}()
	err = p.engine.CopyToContainer(ctx, c.ID, "/", pr)
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("copying the image archive into machine %s: %w", machine, err)
	}
	// The marker comes second, so the node never reads a partial archive.
	var ready bytes.Buffer
	list := strings.Join(img.Refs, "\n") + "\n"
	if err := writeSingleFileTar(&ready, base+".ready", int64(len(list)), strings.NewReader(list), p.now()); err != nil {
		return providers.NewError(providers.KindInvalid, op, err)
	}
	if err := p.engine.CopyToContainer(ctx, c.ID, "/", &ready); err != nil {
		return fmt.Errorf("asking machine %s to import the images: %w", machine, err)
	}

	t := time.NewTicker(loadPollInterval)
	defer t.Stop()
	for {
		_, err := p.ReadFile(ctx, machine, loadDir+"/"+name+".ready")
		if providers.IsNotFound(err) {
			break
		}
		if err != nil && !providers.IsTransient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return providers.NewError(providers.KindTransient, op,
				fmt.Errorf("the node has not imported %s yet (is seed-load-images.path active? journalctl -u seed-load-images): %w", name, ctx.Err()))
		case <-t.C:
		}
	}
	result, err := p.ReadFile(ctx, machine, loadDir+"/"+name+".result")
	if err != nil {
		return fmt.Errorf("reading the outcome of the import: %w", err)
	}
	word, out, _ := strings.Cut(string(result), "\n")
	if word != "ok" {
		return providers.NewError(providers.KindTransient, op, fmt.Errorf("containerd did not import the images: %s", strings.TrimSpace(out)))
	}
	return nil
}

// writeSingleFileTar writes a tar of one regular file, at name (relative to
// the extraction directory), of size bytes read from r.
func writeSingleFileTar(w io.Writer, name string, size int64, r io.Reader, now time.Time) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: size, ModTime: now, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(r, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("the image archive is %d bytes, not the %d announced", n, size)
	}
	return tw.Close()
}

// LocalImage is what the local engine says of an image.
type LocalImage struct {
	ID string
}

// InspectLocalImage reads an image from the local engine; NotFound when
// the engine does not have it. socket is as in Options.
func InspectLocalImage(ctx context.Context, socket, ref string) (LocalImage, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	img, err := newClient(strings.TrimPrefix(socket, "unix://")).ImageInspect(ctx, ref)
	if err != nil {
		return LocalImage{}, err
	}
	return LocalImage{ID: img.ID}, nil
}

// SaveImages exports images from the local engine as one `docker save` tar
// stream. socket is as in Options.
func SaveImages(ctx context.Context, socket string, refs []string) (io.ReadCloser, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	c := newClient(strings.TrimPrefix(socket, "unix://"))
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, "exporting images "+strings.Join(refs, ", "), http.MethodGet, "/v"+v+"/images/get", url.Values{"names": refs}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
