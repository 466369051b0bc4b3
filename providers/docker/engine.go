package docker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// engine is the part of the Docker Engine API the provider uses, and nothing
// more: the real client speaks it over the socket, tests use a fake. Errors
// are *providers.Error; the engine's response, when there was one, is an
// *apiError in the chain.
type engine interface {
	Ping(ctx context.Context) error
	// Info reports the host the engine runs containers on.
	Info(ctx context.Context) (engineInfo, error)

	// ContainerCreate creates a container named name and returns its ID. A
	// name already in use is a conflict (see isConflict).
	ContainerCreate(ctx context.Context, name string, req containerCreateRequest) (string, error)
	// ContainerStart starts a container; one already running is success.
	ContainerStart(ctx context.Context, id string) error
	// ContainerInspect finds a container by ID or name. Like the engine, it
	// also accepts a unique ID prefix: callers that look up by name must
	// check the name of what they get.
	ContainerInspect(ctx context.Context, idOrName string) (container, error)
	// ContainerList lists containers in any state matching the filters.
	ContainerList(ctx context.Context, f filters) ([]container, error)
	// ContainerRemove force-removes a container with its anonymous volumes.
	ContainerRemove(ctx context.Context, id string) error
	// CopyToContainer extracts a tar stream at dir inside the container,
	// which need not be running.
	CopyToContainer(ctx context.Context, id, dir string, tar io.Reader) error
	// CopyFromContainer returns a tar stream of path inside the container.
	CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error)

	// NetworkCreate creates a network and returns its ID. The engine checks
	// names on a best-effort basis only: two racing creators may both win.
	NetworkCreate(ctx context.Context, req networkCreateRequest) (string, error)
	// NetworkList lists networks matching the filters. The engine's name
	// filter matches substrings: callers compare names themselves.
	NetworkList(ctx context.Context, f filters) ([]network, error)
	NetworkRemove(ctx context.Context, id string) error
	// NetworkConnect attaches a container to a network; one attached
	// already is a conflict or, on some engines, a 403 (see isAttached).
	NetworkConnect(ctx context.Context, network, container string) error
	// NetworkDisconnect detaches a container from a network, by force, so
	// that it works on a stopped container too.
	NetworkDisconnect(ctx context.Context, network, container string) error

	VolumeList(ctx context.Context, f filters) ([]volume, error)
	VolumeRemove(ctx context.Context, name string) error

	// ImageInspect finds an image by reference or ID.
	ImageInspect(ctx context.Context, ref string) (image, error)
	// ImageSave returns the image as a `docker save` tar stream.
	ImageSave(ctx context.Context, ref string) (io.ReadCloser, error)
}

// engineInfo is what GET /info says of the host: the CPUs the engine may
// use and MemTotal of its /proc/meminfo, in bytes. Each machine sees the
// same, which is what its kubelet counts as capacity.
type engineInfo struct {
	NCPU     int64 `json:"NCPU"`
	MemTotal int64 `json:"MemTotal"`
}

type image struct {
	ID     string
	Labels map[string]string
}

// filters is the engine's filter syntax: {"label": ["k=v"], "name": ["x"]}.
type filters map[string][]string

func labelFilter(key, value string) filters {
	return filters{"label": {key + "=" + value}}
}

// container is what the provider needs to know about a container, from
// either an inspect or a list.
type container struct {
	ID   string
	Name string // without the leading "/"
	// State is the engine's status: created, running, paused, restarting,
	// removing, exited or dead.
	State   string
	Labels  map[string]string
	Created time.Time
	// IPs maps network names to the container's IPv4 address on them.
	IPs map[string]string
	// Env is the container's environment; only inspects report it.
	Env []string
}

type network struct {
	ID      string            `json:"Id"`
	Name    string            `json:"Name"`
	Labels  map[string]string `json:"Labels"`
	Created time.Time         `json:"Created"`
}

type volume struct {
	Name   string            `json:"Name"`
	Labels map[string]string `json:"Labels"`
}

// containerCreateRequest is the body of POST /containers/create (API 1.41).
type containerCreateRequest struct {
	Hostname         string              `json:"Hostname,omitempty"`
	Image            string              `json:"Image"`
	User             string              `json:"User,omitempty"`
	Cmd              []string            `json:"Cmd,omitempty"`
	Env              []string            `json:"Env,omitempty"`
	Labels           map[string]string   `json:"Labels,omitempty"`
	StopSignal       string              `json:"StopSignal,omitempty"`
	ExposedPorts     map[string]struct{} `json:"ExposedPorts,omitempty"`
	HostConfig       hostConfig          `json:"HostConfig"`
	NetworkingConfig networkingConfig    `json:"NetworkingConfig"`
}

type hostConfig struct {
	Binds             []string                 `json:"Binds,omitempty"`
	Mounts            []mount                  `json:"Mounts,omitempty"`
	Tmpfs             map[string]string        `json:"Tmpfs,omitempty"`
	Privileged        bool                     `json:"Privileged,omitempty"`
	CapAdd            []string                 `json:"CapAdd,omitempty"`
	CapDrop           []string                 `json:"CapDrop,omitempty"`
	SecurityOpt       []string                 `json:"SecurityOpt,omitempty"`
	CgroupnsMode      string                   `json:"CgroupnsMode,omitempty"`
	DeviceCgroupRules []string                 `json:"DeviceCgroupRules,omitempty"`
	PortBindings      map[string][]portBinding `json:"PortBindings,omitempty"`
	NetworkMode       string                   `json:"NetworkMode,omitempty"`
	// MaskedPaths and ReadonlyPaths are sent even when empty: an empty list
	// unmasks /proc/sys (what --security-opt systempaths=unconfined does in
	// the CLI), while a missing one means Docker's defaults.
	MaskedPaths   []string       `json:"MaskedPaths"`
	ReadonlyPaths []string       `json:"ReadonlyPaths"`
	RestartPolicy *restartPolicy `json:"RestartPolicy,omitempty"`
}

type restartPolicy struct {
	Name string `json:"Name"`
}

type mount struct {
	Type          string         `json:"Type"`
	Source        string         `json:"Source,omitempty"`
	Target        string         `json:"Target"`
	ReadOnly      bool           `json:"ReadOnly,omitempty"`
	VolumeOptions *volumeOptions `json:"VolumeOptions,omitempty"`
}

type volumeOptions struct {
	Labels map[string]string `json:"Labels,omitempty"`
}

type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type networkingConfig struct {
	EndpointsConfig map[string]endpointConfig `json:"EndpointsConfig,omitempty"`
}

type endpointConfig struct {
	Aliases []string `json:"Aliases,omitempty"`
}

// networkCreateRequest is the body of POST /networks/create.
type networkCreateRequest struct {
	Name string `json:"Name"`
	// CheckDuplicate asks engines before API 1.44 to refuse a taken name
	// (later ones always do); either way it is best effort.
	CheckDuplicate bool              `json:"CheckDuplicate"`
	Driver         string            `json:"Driver"`
	Labels         map[string]string `json:"Labels,omitempty"`
}

// apiError is an error response from the engine. Its message is the
// engine's own, unchanged.
type apiError struct {
	StatusCode int
	Message    string
}

func (e *apiError) Error() string { return e.Message }

// statusOf returns the HTTP status of the engine's answer in err's chain, or 0.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// isConflict reports whether the engine refused because of the state of
// things: a name already taken, a removal already under way.
func isConflict(err error) bool { return statusOf(err) == http.StatusConflict }
