package docker

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedhq/seed/providers"
)

// recorded is one request the fake engine received.
type recorded struct {
	method, path, query, contentType string
	body                             []byte
}

// wireEngine serves the engine API on a unix socket: /_ping answers with
// apiVersion, everything else with respond.
type wireEngine struct {
	socket     string
	apiVersion string
	respond    func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	reqs []recorded
}

func newWireEngine(t *testing.T, apiVersion string, respond func(w http.ResponseWriter, r *http.Request)) *wireEngine {
	t.Helper()
	we := &wireEngine{socket: filepath.Join(t.TempDir(), "docker.sock"), apiVersion: apiVersion, respond: respond}
	l, err := net.Listen("unix", we.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: we}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return we
}

func (we *wireEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	we.mu.Lock()
	we.reqs = append(we.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), body})
	we.mu.Unlock()
	if r.URL.Path == "/_ping" {
		if we.apiVersion != "" {
			w.Header().Set("API-Version", we.apiVersion)
		}
		_, _ = io.WriteString(w, "OK")
		return
	}
	we.respond(w, r)
}

func (we *wireEngine) count(path string) int {
	we.mu.Lock()
	defer we.mu.Unlock()
	n := 0
	for _, r := range we.reqs {
		if r.path == path {
			n++
		}
	}
	return n
}

func (we *wireEngine) last() recorded {
	we.mu.Lock()
	defer we.mu.Unlock()
	return we.reqs[len(we.reqs)-1]
}

func answer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		if strings.HasPrefix(body, "{") || strings.HasPrefix(body, "[") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestClientNegotiatesVersion(t *testing.T) {
	for _, tc := range []struct {
		server, want, err string
	}{
		{server: "1.41", want: "/v1.41/"},
		{server: "1.43", want: "/v1.43/"},
		{server: "1.52", want: "/v1.47/"},
		{server: "", want: "/v1.41/"},
		{server: "1.40", err: "Docker Engine API 1.40 is too old"},
		{server: "banana", err: "unreadable API version"},
	} {
		t.Run(tc.server, func(t *testing.T) {
			we := newWireEngine(t, tc.server, answer(http.StatusOK, `[]`))
			c := newClient(we.socket)
			_, err := c.NetworkList(ctx(t), nil)
			if tc.err != "" {
				mustKind(t, err, providers.KindInvalid, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := we.last().path; got != tc.want+"networks" {
				t.Fatalf("path = %s, want %snetworks", got, tc.want)
			}
			// Negotiated once.
			_, _ = c.NetworkList(ctx(t), nil)
			if pings := we.count("/_ping"); pings != 1 {
				t.Fatalf("pinged %d times, want 1", pings)
			}
		})
	}
}

func TestClientMapsErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		kind     providers.ErrorKind
		says     string
		conflict bool
	}{
		{"not found", 404, `{"message":"No such container: w1"}`, providers.KindNotFound, "inspecting container w1: No such container: w1", false},
		{"conflict", 409, `{"message":"Conflict. The container name \"/w1\" is already in use"}`, providers.KindTransient, `The container name "/w1" is already in use`, true},
		{"server error", 500, `{"message":"driver failed programming external connectivity"}`, providers.KindTransient, "driver failed programming", false},
		{"bad request", 400, `{"message":"invalid mount config"}`, providers.KindInvalid, "invalid mount config", false},
		{"forbidden", 403, `{"message":"network has active endpoints"}`, providers.KindInvalid, "active endpoints", false},
		{"throttled", 429, `{"message":"slow down"}`, providers.KindThrottled, "slow down", false},
		{"plain text", 500, "oops\n", providers.KindTransient, "inspecting container w1: oops", false},
		{"empty", 502, "", providers.KindTransient, "Bad Gateway", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			we := newWireEngine(t, "1.41", answer(tc.status, tc.body))
			_, err := newClient(we.socket).ContainerInspect(ctx(t), "w1")
			mustKind(t, err, tc.kind, tc.says)
			if isConflict(err) != tc.conflict {
				t.Fatalf("isConflict = %v, want %v", !tc.conflict, tc.conflict)
			}
			if statusOf(err) != tc.status {
				t.Fatalf("statusOf = %d, want %d", statusOf(err), tc.status)
			}
		})
	}
}

func TestClientUnreachable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	refused := filepath.Join(dir, "refused.sock")
	l, err := net.Listen("unix", refused)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close() // the file stays, nobody listens: ECONNREFUSED

	for _, socket := range []string{missing, refused} {
		err := newClient(socket).Ping(ctx(t))
		mustKind(t, err, providers.KindTransient, "cannot reach Docker at unix://"+socket+": is dockerd running?")
	}
}

func TestClientStartAlreadyRunning(t *testing.T) {
	we := newWireEngine(t, "1.41", answer(http.StatusNotModified, ""))
	if err := newClient(we.socket).ContainerStart(ctx(t), "w1"); err != nil {
		t.Fatalf("start of a running container = %v, want success", err)
	}
	if r := we.last(); r.method != http.MethodPost || r.path != "/v1.41/containers/w1/start" {
		t.Fatalf("request = %+v", r)
	}
}

func TestClientWireFormat(t *testing.T) {
	id := strings.Repeat("a", 64)
	responses := map[string]string{
		"POST /v1.41/containers/create": `{"Id":"` + id + `","Warnings":[]}`,
		"GET /v1.41/containers/w1/json": `{"Id":"` + id + `","Name":"/w1","Created":"2026-01-02T03:04:05.678901234Z",
			"State":{"Status":"running"},"Config":{"Labels":{"seed.dev/cluster":"demo"}},
			"NetworkSettings":{"Networks":{"seed-demo":{"IPAddress":"172.18.0.2"},"bridge":{"IPAddress":""}}}}`,
		"GET /v1.41/containers/json": `[{"Id":"` + id + `","Names":["/w1"],"Labels":{"seed.dev/cluster":"demo"},
			"State":"exited","Created":1767323045,"NetworkSettings":{"Networks":{"seed-demo":{"IPAddress":"172.18.0.2"}}}}]`,
		"DELETE /v1.41/containers/" + id:   ``,
		"PUT /v1.41/containers/w1/archive": ``,
		"POST /v1.41/networks/create":      `{"Id":"n1","Warning":""}`,
		"GET /v1.41/networks":              `[{"Id":"n1","Name":"seed-demo","Labels":{"seed.dev/cluster":"demo"},"Created":"2026-01-02T03:04:05.1Z"}]`,
		"DELETE /v1.41/networks/n1":        ``,
		"GET /v1.41/volumes":               `{"Volumes":[{"Name":"v1","Labels":{"seed.dev/cluster":"demo"}}],"Warnings":null}`,
		"DELETE /v1.41/volumes/v1":         ``,
	}
	we := newWireEngine(t, "1.41", func(w http.ResponseWriter, r *http.Request) {
		body, ok := responses[r.Method+" "+r.URL.Path]
		if !ok {
			http.Error(w, `{"message":"unexpected `+r.Method+" "+r.URL.Path+`"}`, http.StatusTeapot)
			return
		}
		if body == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, body)
	})
	c := newClient(we.socket)
	owned := labelFilter(providers.LabelCluster, "demo")
	const wantFilter = "filters=%7B%22label%22%3A%5B%22seed.dev%2Fcluster%3Ddemo%22%5D%7D"

	gotID, err := c.ContainerCreate(ctx(t), "w1", nodeContainer(nodeParams{Name: "w1", Image: "img", Network: "seed-demo"}))
	if err != nil || gotID != id {
		t.Fatalf("create = %q, %v", gotID, err)
	}
	r := we.last()
	var sent map[string]any
	if err := json.Unmarshal(r.body, &sent); err != nil || r.query != "name=w1" || r.contentType != "application/json" {
		t.Fatalf("create request = %+v (%v)", r, err)
	}
	hc := sent["HostConfig"].(map[string]any)
	if sent["Image"] != "img" || sent["StopSignal"] != "SIGRTMIN+3" || hc["CgroupnsMode"] != "private" || hc["NetworkMode"] != "seed-demo" {
		t.Fatalf("create body = %s", r.body)
	}
	// An empty list, not a missing field: that is what unmasks /proc/sys.
	if masked, ok := hc["MaskedPaths"].([]any); !ok || len(masked) != 0 {
		t.Fatalf("create body = %s", r.body)
	}

	got, err := c.ContainerInspect(ctx(t), "w1")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got.ID != id || got.Name != "w1" || got.State != "running" || !got.Created.Equal(created) ||
		got.Labels[providers.LabelCluster] != "demo" || len(got.IPs) != 1 || got.IPs["seed-demo"] != "172.18.0.2" {
		t.Fatalf("inspect = %+v", got)
	}

	list, err := c.ContainerList(ctx(t), owned)
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if l := list[0]; l.Name != "w1" || l.State != "exited" || !l.Created.Equal(time.Unix(1767323045, 0)) || l.IPs["seed-demo"] != "172.18.0.2" {
		t.Fatalf("list = %+v", l)
	}
	if r := we.last(); r.query != "all=1&"+wantFilter {
		t.Fatalf("list query = %s", r.query)
	}

	if err := c.ContainerRemove(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if r := we.last(); r.query != "force=1&v=1" {
		t.Fatalf("remove query = %s", r.query)
	}

	if err := c.CopyToContainer(ctx(t), "w1", "/", strings.NewReader("tarball")); err != nil {
		t.Fatal(err)
	}
	if r := we.last(); r.query != "path=%2F" || r.contentType != "application/x-tar" || string(r.body) != "tarball" {
		t.Fatalf("archive request = %+v", r)
	}

	if nid, err := c.NetworkCreate(ctx(t), networkCreateRequest{Name: "seed-demo", CheckDuplicate: true, Driver: "bridge"}); err != nil || nid != "n1" {
		t.Fatalf("network create = %q, %v", nid, err)
	}
	if r := we.last(); !strings.Contains(string(r.body), `"CheckDuplicate":true`) {
		t.Fatalf("network create body = %s", r.body)
	}
	nws, err := c.NetworkList(ctx(t), owned)
	if err != nil || len(nws) != 1 || nws[0].Name != "seed-demo" || nws[0].Created.IsZero() {
		t.Fatalf("networks = %+v, %v", nws, err)
	}
	if r := we.last(); r.query != wantFilter {
		t.Fatalf("network list query = %s", r.query)
	}
	if err := c.NetworkRemove(ctx(t), "n1"); err != nil {
		t.Fatal(err)
	}
	vols, err := c.VolumeList(ctx(t), owned)
	if err != nil || len(vols) != 1 || vols[0].Name != "v1" {
		t.Fatalf("volumes = %+v, %v", vols, err)
	}
	if err := c.VolumeRemove(ctx(t), "v1"); err != nil {
		t.Fatal(err)
	}
}
