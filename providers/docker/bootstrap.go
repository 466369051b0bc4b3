package docker

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/seedhq/seed/pkg/bootstrap"
	"github.com/seedhq/seed/providers"
)

// Where a machine finds what it runs on first boot; the node image's boot
// unit reads them. The provider ID file holds the bare value, no newline.
const (
	bootstrapScriptPath = "/var/lib/seed/bootstrap/script"
	providerIDPath      = "/var/lib/seed/provider-id"
)

// bootstrapArchive is the tar, extracted at "/", that gives a machine its
// bootstrap files, its script, its provider ID and, for a sized machine
// type, the allocatable its script reserves the rest of the host to leave
// (bootstrap.AllocatablePath; none for the empty type). It holds no directory
// entries: the engine creates missing parents (0755, root) and leaves
// existing ones, such as /etc, as they are.
func bootstrapArchive(b providers.Bootstrap, providerID string, allocatable []byte, now time.Time) ([]byte, error) {
	type entry struct {
		path    string
		mode    int64
		content []byte
	}
	var entries []entry
	seen := map[string]bool{}
	add := func(p string, mode uint32, content []byte) error {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("bootstrap file path %q must be absolute and clean", p)
		}
		if seen[p] {
			return fmt.Errorf("bootstrap file %q is given twice", p)
		}
		seen[p] = true
		if mode == 0 {
			mode = 0o644
		}
		entries = append(entries, entry{path: p, mode: int64(mode & 0o7777), content: content})
		return nil
	}
	for _, f := range b.Files {
		if f.Path == bootstrapScriptPath || f.Path == providerIDPath || f.Path == bootstrap.AllocatablePath || strings.HasPrefix(f.Path, bootstrapScriptPath+"/") {
			return nil, fmt.Errorf("bootstrap file %q would overwrite what the provider writes", f.Path)
		}
		if err := add(f.Path, f.Mode, f.Content); err != nil {
			return nil, err
		}
	}
	// The script may carry join credentials: root only.
	if err := add(bootstrapScriptPath, 0o700, []byte(b.Script)); err != nil {
		return nil, err
	}
	if err := add(providerIDPath, 0o644, []byte(providerID)); err != nil {
		return nil, err
	}
	if len(allocatable) > 0 {
		if err := add(bootstrap.AllocatablePath, 0o644, allocatable); err != nil {
			return nil, err
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     strings.TrimPrefix(e.path, "/"),
			Mode:     e.mode,
			Size:     int64(len(e.content)),
			ModTime:  now,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
