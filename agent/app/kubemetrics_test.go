package app

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRequestsAreNamedByVerbAndResource(t *testing.T) {
	for _, c := range []struct {
		method, url    string
		verb, resource string
	}{
		{"GET", "/api/v1/namespaces/seed-system/configmaps/seed-status", "get", "configmaps"},
		{"PUT", "/api/v1/namespaces/seed-system/configmaps/seed-status", "update", "configmaps"},
		{"GET", "/api/v1/nodes?labelSelector=a%3Db", "list", "nodes"},
		{"GET", "/api/v1/nodes?watch=true&resourceVersion=1", "watch", "nodes"},
		{"POST", "/api/v1/namespaces/kube-system/secrets", "create", "secrets"},
		{"POST", "/api/v1/namespaces/ns/pods/p/eviction", "create", "pods/eviction"},
		{"PATCH", "/api/v1/nodes/n1", "patch", "nodes"},
		{"DELETE", "/api/v1/nodes/n1", "delete", "nodes"},
		{"DELETE", "/api/v1/nodes", "deletecollection", "nodes"},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/seed-system/leases/seed-agent", "update", "leases"},
		{"GET", "/apis/apps/v1/daemonsets", "list", "daemonsets"},
		{"GET", "/version", "get", "nonresource"},
		{"GET", "/api/v1/namespaces", "list", "namespaces"},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		verb, resource := classifyRequest(&http.Request{Method: c.method, URL: u})
		if verb != c.verb || resource != c.resource {
			t.Errorf("%s %s = %s %s, want %s %s", c.method, c.url, verb, resource, c.verb, c.resource)
		}
	}
}
