package backup

import (
	"strings"
	"testing"
)

func TestParseSharedCredentials(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    keys
		wantErr string
	}{
		{name: "what SharedCredentials renders", file: string(SharedCredentials("id-1", "secret-1")),
			want: keys{AccessKeyID: "id-1", SecretAccessKey: "secret-1"}},
		{name: "spaces, comments, a session token and other profiles",
			file: "# keys\n[other]\naws_access_key_id = wrong\n\n[ default ]\n  AWS_ACCESS_KEY_ID = id-2\naws_secret_access_key=s=2\n; note\naws_session_token = tok\nregion = x\n[after]\naws_secret_access_key = wrong\n",
			want: keys{AccessKeyID: "id-2", SecretAccessKey: "s=2", SessionToken: "tok"}},
		{name: "no default profile", file: "[other]\naws_access_key_id=a\naws_secret_access_key=b\n", wantErr: "[default]"},
		{name: "no secret", file: "[default]\naws_access_key_id=a\n", wantErr: "aws_secret_access_key"},
		{name: "a broken header", file: "[default\naws_access_key_id=a\n", wantErr: "line 1"},
		{name: "a line that is not key = value", file: "[default]\naws_access_key_id a\n", wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSharedCredentials([]byte(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
