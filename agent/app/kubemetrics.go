package app

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
)

// countRequests wraps cfg's transport so that every request the agent
// makes to the API server, the provider's included when it reaches the
// cluster through a copy of cfg, is counted in seed_kube_requests_total:
// the API load the agent puts on the cluster, per pass and per machine.
func countRequests(cfg *rest.Config, reg prometheus.Registerer) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seed_kube_requests_total",
		Help: "Requests the agent made to the Kubernetes API server, by verb, resource and status code.",
	}, []string{"verb", "resource", "code"})
	reg.MustRegister(requests)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			code := "error"
			if err == nil {
				code = strconv.Itoa(resp.StatusCode)
			}
			verb, resource := classifyRequest(req)
			requests.WithLabelValues(verb, resource, code).Inc()
			return resp, err
		})
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// classifyRequest names a request as the API server's own metrics do: a
// Kubernetes verb (get, list, watch, create, update, patch, delete) and the
// resource, from the URL alone, so that label values stay few.
func classifyRequest(req *http.Request) (verb, resource string) {
	// /api/v1/namespaces/NS/RESOURCE/NAME/SUB or /apis/GROUP/VERSION/...
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return strings.ToLower(req.Method), "nonresource"
	}
	if len(parts) >= 2 && parts[0] == "namespaces" {
		parts = parts[2:]
		if len(parts) == 0 {
			parts = []string{"namespaces"}
		}
	}
	if len(parts) == 0 {
		return strings.ToLower(req.Method), "discovery"
	}
	resource = parts[0]
	named := len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb, resource
}
