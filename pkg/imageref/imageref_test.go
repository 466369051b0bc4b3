package imageref

import (
	"strings"
	"testing"
)

func TestParseAcceptsWhatDockerAcceptsAndNamesItAsContainerdDoes(t *testing.T) {
	for _, tc := range []struct{ in, str, normalized string }{
		{"busybox", "busybox:latest", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "busybox:1.36", "docker.io/library/busybox:1.36"},
		{"user/app:v1", "user/app:v1", "docker.io/user/app:v1"},
		{"example.com/team/app:v1.2-rc_3", "example.com/team/app:v1.2-rc_3", "example.com/team/app:v1.2-rc_3"},
		{"localhost/app", "localhost/app:latest", "localhost/app:latest"},
		{"localhost:5000/a/b__c:t", "localhost:5000/a/b__c:t", "localhost:5000/a/b__c:t"},
		{"seed-e2e-probe:4bc2270770b4", "seed-e2e-probe:4bc2270770b4", "docker.io/library/seed-e2e-probe:4bc2270770b4"},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if r.String() != tc.str || r.Normalized() != tc.normalized {
			t.Errorf("Parse(%q) = %s, %s; want %s, %s", tc.in, r, r.Normalized(), tc.str, tc.normalized)
		}
	}
}

func TestParseRejectsWhatIsNotANamedReferenceSayingWhy(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"App:v1", "lower case"},
		{"example.com/App", "lower case"},
		{"app:", "not an image reference"},
		{"app:-x", "not an image reference"},
		{"-app", "not an image reference"},
		{"app//x", "not an image reference"},
		{"app@sha256:" + strings.Repeat("a", 64), "digest"},
		{"sha256:" + strings.Repeat("a", 64), "image ID"},
		{"5ecfc854dd64", "image ID"},
		{"a b", "not an image reference"},
		{strings.Repeat("a", 256), "more than 255"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", tc.in, err, tc.want)
		}
	}
}
