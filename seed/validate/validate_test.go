package validate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedhq/seed/pkg/api/v1alpha1"
	"github.com/seedhq/seed/pkg/cli"
)

const validSpec = `apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: lab
spec:
  kubernetesVersion: v1.34.2
  provider:
    docker: {}
  nodePools:
  - name: workers
    replicas: 2
`

const invalidSpec = `apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: Lab
spec:
  provider:
    docker: {}
  nodePools:
  - name: workers
    replica: 2
  - name: workers
    replicas: -1
`

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := write("valid.yaml", validSpec)
	invalid := write("invalid.yaml", invalidSpec)
	testdata := filepath.Join("..", "..", "pkg", "api", "v1alpha1", "testdata", "aws.yaml")

	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantOut string
		// wantErrOut lists what ErrOut must contain, in order.
		wantErrOut []string
		// wantErr is part of the returned error's message; "" means success.
		wantErr     string
		wantInvalid bool
	}{
		{
			name:    "valid file",
			args:    []string{"-f", valid},
			wantOut: `cluster spec "lab" in ` + valid + " is valid\n",
		},
		{
			name:    "valid example from the API package",
			args:    []string{"--file", testdata},
			wantOut: `cluster spec "prod" in ` + testdata + " is valid\n",
		},
		{
			name:    "valid spec on stdin",
			args:    []string{"-f", "-"},
			stdin:   validSpec,
			wantOut: `cluster spec "lab" in stdin is valid` + "\n",
		},
		{
			name:    "checked against the running version",
			args:    []string{"-f", valid, "--running-version", "v1.34.2"},
			wantOut: "is valid\n",
		},
		{
			name:    "an upgrade by one minor",
			args:    []string{"-f", valid, "--running-version", "v1.33.7"},
			wantOut: "is valid\n",
		},
		{
			name:        "a skipped minor",
			args:        []string{"-f", valid, "--running-version", "v1.32.7"},
			wantErr:     "has 1 problem",
			wantInvalid: true,
			wantErrOut:  []string{"cannot skip minor versions to v1.34.2: upgrade to v1.33.x first"},
		},
		{
			name: "invalid file lists every problem",
			args: []string{"-f", invalid},
			wantErrOut: []string{
				"cluster spec in " + invalid + " is invalid:\n",
				`  spec.nodePools[0].replica: unknown field; did you mean "replicas"?` + "\n",
				`  metadata.name: invalid name "Lab"`,
				`  spec.nodePools[1].name: duplicate pool name "workers": pool names must be unique`,
				"  spec.nodePools[1].replicas: -1 is negative: must be 0 or more\n",
			},
			wantErr:     "cluster spec in " + invalid + " has 4 problems",
			wantInvalid: true,
		},
		{
			name:        "invalid spec on stdin",
			args:        []string{"-f", "-"},
			stdin:       "kind: Cluster\n  bad: indent\n",
			wantErrOut:  []string{"cluster spec in stdin is invalid:\n", "  invalid YAML: line 2:"},
			wantErr:     "cluster spec in stdin has 1 problem",
			wantInvalid: true,
		},
		{
			name:        "empty stdin",
			args:        []string{"-f", "-"},
			wantErrOut:  []string{"the document is empty"},
			wantErr:     "has 1 problem",
			wantInvalid: true,
		},
		{
			name:        "a downgrade from the running version",
			args:        []string{"-f", valid, "--running-version", "v1.35.0"},
			wantErrOut:  []string{"  spec.kubernetesVersion: the cluster runs v1.35.0 and Kubernetes cannot be downgraded to v1.34.2"},
			wantErr:     "has 1 problem",
			wantInvalid: true,
		},
		{
			name:    "a malformed running version",
			args:    []string{"-f", valid, "--running-version", "latest"},
			wantErr: `against --running-version "latest"`,
		},
		{
			name:    "no file flag",
			args:    []string{},
			wantErr: `required flag(s) "file" not set`,
		},
		{
			name:    "file does not exist",
			args:    []string{"-f", filepath.Join(dir, "missing.yaml")},
			wantErr: "reading the cluster spec: open " + filepath.Join(dir, "missing.yaml"),
		},
		{
			name:    "positional argument",
			args:    []string{"-f", valid, "extra"},
			wantErr: `unknown command "extra"`,
		},
		{
			name:    "too large for a ConfigMap",
			args:    []string{"-f", "-"},
			stdin:   "# " + strings.Repeat("x", cli.MaxSpecSize),
			wantErr: "larger than 1 MiB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			cmd := NewCommand(cli.IOStreams{In: strings.NewReader(tt.stdin), Out: &out, ErrOut: &errOut})
			cmd.SetArgs(tt.args)
			// Cobra's own "Error: ..." line goes here, not into ErrOut, so the
			// test sees exactly what the verb prints.
			var cobraOut bytes.Buffer
			cmd.SetOut(&cobraOut)
			cmd.SetErr(&cobraOut)

			err := cmd.Execute()

			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v\nErrOut:\n%s", err, errOut.String())
			case tt.wantErr != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if got := v1alpha1.IsInvalidSpec(err); got != tt.wantInvalid {
				t.Errorf("IsInvalidSpec(%v) = %v, want %v", err, got, tt.wantInvalid)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("the returned error repeats the problems; it should be one line: %q", err)
			}
			if tt.wantOut == "" && out.Len() > 0 {
				t.Errorf("unexpected output on Out: %q", out.String())
			}
			if !strings.HasSuffix(out.String(), tt.wantOut) || (tt.wantOut != "" && out.Len() == 0) {
				t.Errorf("Out = %q, want it to end with %q", out.String(), tt.wantOut)
			}
			rest := errOut.String()
			for _, want := range tt.wantErrOut {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("ErrOut lacks %q (in order); ErrOut:\n%s", want, errOut.String())
					break
				}
				rest = rest[i+len(want):]
			}
			if len(tt.wantErrOut) == 0 && errOut.Len() > 0 {
				t.Errorf("unexpected output on ErrOut: %q", errOut.String())
			}
		})
	}
}
