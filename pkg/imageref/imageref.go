package imageref

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The grammar of github.com/distribution/reference, less digests (a loaded
// image needs a name the kubelet can ask for).
var (
	component = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
	domain    = `(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?`
	tag       = `[\w][\w.-]{0,127}`
	pattern   = regexp.MustCompile(`^(?:(` + domain + `)/)?(` + component + `(?:/` + component + `)*)(?::(` + tag + `))?$`)
	hexID     = regexp.MustCompile(`^(?:sha256:)?[a-f0-9]{12,64}$`)
)

// maxName is distribution's limit on the name (domain and path).
const maxName = 255

// Ref is a parsed image reference.
type Ref struct {
	// Domain is the registry host, "" when the reference names none.
	Domain string
	// Path is the repository path, without the domain.
	Path string
	// Tag is "" when the reference names none (Docker reads "latest").
	Tag string
}

// Parse checks s is an image reference with a name, and an optional tag.
func Parse(s string) (Ref, error) {
	switch {
	case s == "":
		return Ref{}, errors.New("an image reference cannot be empty")
	case strings.Contains(s, "@"):
		return Ref{}, fmt.Errorf("%q is a digest reference: tag the image (docker tag) and load the tag, which is what pods name", s)
	case hexID.MatchString(s) && !strings.Contains(s, ":") || strings.HasPrefix(s, "sha256:"):
		return Ref{}, fmt.Errorf("%q is an image ID, not a reference: load it by name and tag (docker image ls)", s)
	}
	m := pattern.FindStringSubmatch(s)
	if m == nil {
		if strings.ToLower(s) != s && pattern.MatchString(strings.ToLower(s)) {
			return Ref{}, fmt.Errorf("%q is not an image reference: repository names are lower case", s)
		}
		return Ref{}, fmt.Errorf("%q is not an image reference (NAME[:TAG], e.g. example.com/app:v1)", s)
	}
	r := Ref{Domain: m[1], Path: m[2], Tag: m[3]}
	// A first component without a dot, a port or "localhost" is a path
	// component (Docker Hub), not a domain: "library/x" and "user/x".
	if r.Domain != "" && !strings.ContainsAny(r.Domain, ".:") && r.Domain != "localhost" {
		if r.Domain != strings.ToLower(r.Domain) {
			return Ref{}, fmt.Errorf("%q is not an image reference: repository names are lower case", s)
		}
		r.Path, r.Domain = r.Domain+"/"+r.Path, ""
	}
	if n := len(r.Domain) + len(r.Path); n > maxName {
		return Ref{}, fmt.Errorf("%q is not an image reference: its name is %d characters, more than %d", s, n, maxName)
	}
	return r, nil
}

// String is the reference as Docker prints it, with the tag it reads.
func (r Ref) String() string {
	s := r.Path
	if r.Domain != "" {
		s = r.Domain + "/" + s
	}
	return s + ":" + r.tag()
}

// Normalized is the reference as containerd, and so the kubelet, names it:
// docker.io/library/busybox:latest for "busybox".
func (r Ref) Normalized() string {
	d, p := r.Domain, r.Path
	if d == "" {
		d = "docker.io"
		if !strings.Contains(p, "/") {
			p = "library/" + p
		}
	}
	return d + "/" + p + ":" + r.tag()
}

func (r Ref) tag() string {
	if r.Tag == "" {
		return "latest"
	}
	return r.Tag
}
