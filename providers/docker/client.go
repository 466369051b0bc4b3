package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seedhq/seed/providers"
)

// The API versions the client speaks. It negotiates down to the engine's
// own version, like the Docker CLI does, and refuses engines older than
// 1.41 (Docker 20.10), the first with CgroupnsMode. The upper bound stays
// within what newer engines still accept (Docker 29 refuses below 1.44) and
// below versions whose changes this client has not been checked against.
const (
	minAPIVersion = "1.41"
	maxAPIVersion = "1.47"
)

// DefaultSocket is where the Docker engine listens unless told otherwise.
const DefaultSocket = "/var/run/docker.sock"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// client speaks the Docker Engine API over a unix socket.
type client struct {
	socket string
	http   *http.Client

	mu      sync.Mutex
	version string // negotiated on first use
}

var _ engine = (*client)(nil)

func newClient(socket string) *client {
	dialer := &net.Dialer{}
	return &client{
		socket: socket,
		http: &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return dialer.DialContext(ctx, "unix", socket)
				},
				MaxIdleConns:       8,
				IdleConnTimeout:    30 * time.Second,
				DisableCompression: true,
			},
		},
	}
}

// unreachableError says the socket could not be dialled, and how to fix it.
type unreachableError struct {
	socket string
	hint   string
	err    error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach Docker at unix://%s: %s (%v)", e.socket, e.hint, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// send performs one request. A transport failure or an error status comes
// back as a classified error; otherwise the caller owns the response body.
func (c *client) send(ctx context.Context, op, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: "docker", Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, providers.NewError(providers.KindInvalid, op, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, providers.NewError(kindForStatus(resp.StatusCode), op, readAPIError(resp))
}

func (c *client) transportError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller gave up; say so rather than blame the engine.
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return providers.NewError(providers.KindTransient, op,
			&unreachableError{socket: c.socket, hint: "is dockerd running?", err: err})
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return providers.NewError(providers.KindInvalid, op,
			&unreachableError{socket: c.socket, hint: "permission denied: is this user allowed to use Docker?", err: err})
	}
	return providers.NewError(providers.KindTransient, op, err)
}

func kindForStatus(status int) providers.ErrorKind {
	switch {
	case status == http.StatusNotFound:
		return providers.KindNotFound
	case status == http.StatusTooManyRequests:
		return providers.KindThrottled
	case status == http.StatusConflict:
		// Callers that expect a conflict branch on isConflict; one that
		// escapes them (e.g. a removal already under way) clears with time.
		return providers.KindTransient
	case status >= 500:
		return providers.KindTransient
	default:
		return providers.KindInvalid
	}
}

func readAPIError(resp *http.Response) *apiError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(raw))
	var body struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Message != "" {
		msg = body.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &apiError{StatusCode: resp.StatusCode, Message: msg}
}

// do sends a versioned request with an optional JSON body and decodes a JSON
// answer into out when out is not nil.
func (c *client) do(ctx context.Context, op, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	contentType := ""
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return providers.NewError(providers.KindInvalid, op, err)
		}
		body, contentType = bytes.NewReader(raw), "application/json"
	}
	return c.doRaw(ctx, op, method, path, q, body, contentType, out)
}

func (c *client) doRaw(ctx context.Context, op, method, path string, q url.Values, body io.Reader, contentType string, out any) error {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, op, method, "/v"+v+path, q, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return providers.NewError(providers.KindTransient, op, fmt.Errorf("decoding the engine's answer: %w", err))
	}
	return nil
}

// apiVersion negotiates once; a failed negotiation is tried again next call.
func (c *client) apiVersion(ctx context.Context) (string, error) {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	if err := c.Ping(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version, nil
}

// Ping checks that the engine answers and negotiates the API version.
func (c *client) Ping(ctx context.Context) error {
	const op = "pinging Docker"
	resp, err := c.send(ctx, op, http.MethodGet, "/_ping", nil, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	v, err := negotiate(resp.Header.Get("API-Version"))
	if err != nil {
		return providers.NewError(providers.KindInvalid, op, err)
	}
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	return nil
}

// negotiate picks the API version to speak to an engine whose newest is
// server ("" when it did not say, as very old engines do not).
func negotiate(server string) (string, error) {
	if server == "" {
		return minAPIVersion, nil
	}
	s, ok := parseAPIVersion(server)
	if !ok {
		return "", fmt.Errorf("engine reports an unreadable API version %q", server)
	}
	lo, _ := parseAPIVersion(minAPIVersion)
	hi, _ := parseAPIVersion(maxAPIVersion)
	switch {
	case s.less(lo):
		return "", fmt.Errorf("the Docker Engine API %s is too old: Seed needs %s (Docker 20.10) or newer", server, minAPIVersion)
	case hi.less(s):
		return maxAPIVersion, nil
	default:
		return server, nil
	}
}

type apiVersion struct{ major, minor int }

func (a apiVersion) less(b apiVersion) bool {
	return a.major < b.major || (a.major == b.major && a.minor < b.minor)
}

func parseAPIVersion(s string) (apiVersion, bool) {
	major, minor, ok := strings.Cut(s, ".")
	if !ok {
		return apiVersion{}, false
	}
	a, err1 := strconv.Atoi(major)
	b, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return apiVersion{}, false
	}
	return apiVersion{a, b}, true
}

// shortID shortens a full container or network ID for messages.
func shortID(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	return id
}

func encodeFilters(f filters) (string, error) {
	raw, err := json.Marshal(f)
	return string(raw), err
}

func listQuery(op string, f filters, extra url.Values) (url.Values, error) {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	if len(f) > 0 {
		enc, err := encodeFilters(f)
		if err != nil {
			return nil, providers.NewError(providers.KindInvalid, op, err)
		}
		q.Set("filters", enc)
	}
	return q, nil
}

// ContainerCreate implements engine.
func (c *client) ContainerCreate(ctx context.Context, name string, req containerCreateRequest) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	q := url.Values{"name": {name}}
	if err := c.do(ctx, "creating container "+name, http.MethodPost, "/containers/create", q, req, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// ContainerStart implements engine. The engine answers 304 for a container
// already running, which send counts as success.
func (c *client) ContainerStart(ctx context.Context, id string) error {
	return c.do(ctx, "starting container "+shortID(id), http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil, nil)
}

type endpointJSON struct {
	IPAddress string `json:"IPAddress"`
}

// ContainerInspect implements engine.
func (c *client) ContainerInspect(ctx context.Context, idOrName string) (container, error) {
	var out struct {
		ID      string    `json:"Id"`
		Name    string    `json:"Name"`
		Created time.Time `json:"Created"`
		State   struct {
			Status string `json:"Status"`
		} `json:"State"`
		Config struct {
			Labels map[string]string `json:"Labels"`
			Env    []string          `json:"Env"`
		} `json:"Config"`
		NetworkSettings struct {
			Networks map[string]endpointJSON `json:"Networks"`
		} `json:"NetworkSettings"`
	}
	op := "inspecting container " + shortID(idOrName)
	if err := c.do(ctx, op, http.MethodGet, "/containers/"+url.PathEscape(idOrName)+"/json", nil, nil, &out); err != nil {
		return container{}, err
	}
	return container{
		ID:     out.ID,
		Name:   strings.TrimPrefix(out.Name, "/"),
		State:  out.State.Status,
		Labels: out.Config.Labels,
		// Lists report whole seconds; inspects are cut to match so that a
		// machine's CreatedAt does not depend on how it was found.
		Created: out.Created.Truncate(time.Second).UTC(),
		IPs:     ips(out.NetworkSettings.Networks),
		Env:     out.Config.Env,
	}, nil
}

// ContainerList implements engine.
func (c *client) ContainerList(ctx context.Context, f filters) ([]container, error) {
	const op = "listing containers"
	q, err := listQuery(op, f, url.Values{"all": {"1"}})
	if err != nil {
		return nil, err
	}
	var out []struct {
		ID              string            `json:"Id"`
		Names           []string          `json:"Names"`
		Labels          map[string]string `json:"Labels"`
		State           string            `json:"State"`
		Created         int64             `json:"Created"`
		NetworkSettings *struct {
			Networks map[string]endpointJSON `json:"Networks"`
		} `json:"NetworkSettings"`
	}
	if err := c.do(ctx, op, http.MethodGet, "/containers/json", q, nil, &out); err != nil {
		return nil, err
	}
	list := make([]container, 0, len(out))
	for _, o := range out {
		ct := container{ID: o.ID, State: o.State, Labels: o.Labels, Created: time.Unix(o.Created, 0).UTC()}
		if len(o.Names) > 0 {
			ct.Name = strings.TrimPrefix(o.Names[0], "/")
		}
		if o.NetworkSettings != nil {
			ct.IPs = ips(o.NetworkSettings.Networks)
		}
		list = append(list, ct)
	}
	return list, nil
}

func ips(eps map[string]endpointJSON) map[string]string {
	m := make(map[string]string, len(eps))
	for name, ep := range eps {
		if ep.IPAddress != "" {
			m[name] = ep.IPAddress
		}
	}
	return m
}

// ContainerRemove implements engine.
func (c *client) ContainerRemove(ctx context.Context, id string) error {
	q := url.Values{"force": {"1"}, "v": {"1"}}
	return c.do(ctx, "removing container "+shortID(id), http.MethodDelete, "/containers/"+url.PathEscape(id), q, nil, nil)
}

// CopyToContainer implements engine.
func (c *client) CopyToContainer(ctx context.Context, id, dir string, tar io.Reader) error {
	q := url.Values{"path": {dir}}
	return c.doRaw(ctx, "copying files into container "+shortID(id), http.MethodPut,
		"/containers/"+url.PathEscape(id)+"/archive", q, tar, "application/x-tar", nil)
}

// NetworkCreate implements engine.
func (c *client) NetworkCreate(ctx context.Context, req networkCreateRequest) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	if err := c.do(ctx, "creating network "+req.Name, http.MethodPost, "/networks/create", nil, req, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// NetworkList implements engine.
func (c *client) NetworkList(ctx context.Context, f filters) ([]network, error) {
	const op = "listing networks"
	q, err := listQuery(op, f, nil)
	if err != nil {
		return nil, err
	}
	var out []network
	if err := c.do(ctx, op, http.MethodGet, "/networks", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// NetworkRemove implements engine.
func (c *client) NetworkRemove(ctx context.Context, id string) error {
	return c.do(ctx, "removing network "+shortID(id), http.MethodDelete, "/networks/"+url.PathEscape(id), nil, nil, nil)
}

// NetworkConnect implements engine.
func (c *client) NetworkConnect(ctx context.Context, network, container string) error {
	body := struct {
		Container string `json:"Container"`
	}{container}
	return c.do(ctx, "connecting container "+shortID(container)+" to network "+network, http.MethodPost,
		"/networks/"+url.PathEscape(network)+"/connect", nil, body, nil)
}

// NetworkDisconnect implements engine.
func (c *client) NetworkDisconnect(ctx context.Context, network, container string) error {
	body := struct {
		Container string `json:"Container"`
		Force     bool   `json:"Force"`
	}{container, true}
	return c.do(ctx, "disconnecting container "+shortID(container)+" from network "+network, http.MethodPost,
		"/networks/"+url.PathEscape(network)+"/disconnect", nil, body, nil)
}

// VolumeList implements engine.
func (c *client) VolumeList(ctx context.Context, f filters) ([]volume, error) {
	const op = "listing volumes"
	q, err := listQuery(op, f, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Volumes []volume `json:"Volumes"`
	}
	if err := c.do(ctx, op, http.MethodGet, "/volumes", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Volumes, nil
}

// VolumeRemove implements engine.
func (c *client) VolumeRemove(ctx context.Context, name string) error {
	return c.do(ctx, "removing volume "+shortID(name), http.MethodDelete, "/volumes/"+url.PathEscape(name), nil, nil, nil)
}

func (c *client) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, "reading "+path+" from container "+id, http.MethodGet, "/v"+v+"/containers/"+url.PathEscape(id)+"/archive",
		url.Values{"path": {path}}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageInspect implements engine.
func (c *client) ImageInspect(ctx context.Context, ref string) (image, error) {
	var out struct {
		ID     string `json:"Id"`
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	if err := c.do(ctx, "inspecting image "+ref, http.MethodGet, "/images/"+ref+"/json", nil, nil, &out); err != nil {
		return image{}, err
	}
	return image{ID: out.ID, Labels: out.Config.Labels}, nil
}

// Info implements engine.
func (c *client) Info(ctx context.Context) (engineInfo, error) {
	var out engineInfo
	if err := c.do(ctx, "reading the Docker host's info", http.MethodGet, "/info", nil, nil, &out); err != nil {
		return engineInfo{}, err
	}
	return out, nil
}

// ImageSave implements engine.
func (c *client) ImageSave(ctx context.Context, ref string) (io.ReadCloser, error) {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, "exporting image "+ref, http.MethodGet, "/v"+v+"/images/get", url.Values{"names": {ref}}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
