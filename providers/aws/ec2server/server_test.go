package ec2server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/providers/aws/fake"
)

func post(t *testing.T, srv *httptest.Server, auth bool, params url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=x")
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestProtocol(t *testing.T) {
	f := fake.NewEC2(fake.NewClock(time.Unix(0, 0)), "eu-west-1")
	s := New(f)
	srv := httptest.NewServer(s)
	defer srv.Close()

	code, body := post(t, srv, true, url.Values{"Action": {"DescribeVpcs"}, "Version": {APIVersion}, "Filter.1.Name": {"tag:seed.dev/cluster"}, "Filter.1.Value.1": {"demo"}})
	if code != 200 || !strings.Contains(body, `<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`) {
		t.Errorf("DescribeVpcs = %d %s", code, body)
	}
	code, body = post(t, srv, true, url.Values{"Action": {"DescribeVpcs"}, "Version": {APIVersion}, "Bogus.1": {"x"}})
	if code != 400 || !strings.Contains(body, "<Response><Errors><Error><Code>UnknownParameter</Code>") || !strings.Contains(body, "<RequestID>") {
		t.Errorf("unknown parameter = %d %s", code, body)
	}
	code, body = post(t, srv, false, url.Values{"Action": {"DescribeVpcs"}, "Version": {APIVersion}})
	if code != 401 || !strings.Contains(body, "<Code>AuthFailure</Code>") {
		t.Errorf("unsigned = %d %s", code, body)
	}
	code, body = post(t, srv, true, url.Values{"Action": {"TerminateInstances"}, "Version": {APIVersion}, "InstanceId.1": {"i-0"}})
	if code != 400 || !strings.Contains(body, "<Code>InvalidInstanceID.NotFound</Code>") {
		t.Errorf("terminate unknown = %d %s", code, body)
	}
	s.SetThrottleRate(1, 1)
	code, body = post(t, srv, true, url.Values{"Action": {"DescribeVpcs"}, "Version": {APIVersion}})
	if code != 503 || !strings.Contains(body, "<Code>RequestLimitExceeded</Code>") {
		t.Errorf("throttled = %d %s", code, body)
	}
	if s.Requests("DescribeVpcs") != 3 || s.TotalRequests() != 4 {
		t.Errorf("requests = %d / %d", s.Requests("DescribeVpcs"), s.TotalRequests())
	}
}
