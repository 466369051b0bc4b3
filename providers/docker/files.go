package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/seedhq/seed/providers"
)

// maxReadFile bounds what ReadFile returns: it is meant for small
// configuration files.
const maxReadFile = 4 << 20

// ReadFile implements providers.Provider: it copies path out of the
// machine's container, so the seed can fetch the admin kubeconfig kubeadm
// wrote on the control plane instead of keeping credentials in a local file.
func (p *provider) ReadFile(ctx context.Context, machine, path string) ([]byte, error) {
	op := fmt.Sprintf("reading %s from machine %s", path, machine)
	c, err := p.engine.ContainerInspect(ctx, machine)
	if err != nil {
		return nil, err
	}
	if c.Name != machine {
		return nil, providers.NewError(providers.KindNotFound, op, fmt.Errorf("no container named %s", machine))
	}
	if err := p.owned(c); err != nil {
		return nil, err
	}
	rc, err := p.engine.CopyFromContainer(ctx, c.ID, path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, providers.NewError(providers.KindNotFound, op, errors.New("the engine sent no file"))
		}
		if err != nil {
			return nil, providers.NewError(providers.KindTransient, op, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(io.LimitReader(tr, maxReadFile+1))
		if err != nil {
			return nil, providers.NewError(providers.KindTransient, op, err)
		}
		if len(body) > maxReadFile {
			return nil, providers.NewError(providers.KindInvalid, op, fmt.Errorf("file is larger than %d bytes", maxReadFile))
		}
		return body, nil
	}
}

// SaveImage exports an image from the local engine as a `docker save` tar
// stream, for loading into a machine's containerd. socket is as in Options.
func SaveImage(ctx context.Context, socket, ref string) (io.ReadCloser, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	return newClient(strings.TrimPrefix(socket, "unix://")).ImageSave(ctx, ref)
}
