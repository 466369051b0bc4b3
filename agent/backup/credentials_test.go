package backup

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
		{name: "what SharedCredentials renders without keys: the machine's identity", file: string(SharedCredentials("", "")), want: keys{}},
		{name: "a default profile with other settings only", file: "[default]\nregion = eu-west-1\n", want: keys{}},
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

func TestOpenStoreWithoutKeysSignsWithTheInstanceRole(t *testing.T) {
	for _, tc := range []struct {
		name         string
		creds        []byte
		instanceRole bool
	}{
		{"the AWS provider's store, without keys", SharedCredentials("", ""), true},
		{"a store with keys", SharedCredentials("id-1", "secret-1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := openStore(Store{URL: "https://s3.eu-west-1.amazonaws.com", Bucket: "b", Region: "eu-west-1", Credentials: tc.creds})
			if err != nil {
				t.Fatal(err)
			}
			provider := o.api.(*s3.Client).Options().Credentials
			cache, ok := provider.(*aws.CredentialsCache)
			if got := ok && cache.IsCredentialsProvider(&ec2rolecreds.Provider{}); got != tc.instanceRole {
				t.Errorf("signs with the instance role: %v, want %v (provider %T)", got, tc.instanceRole, provider)
			}
		})
	}
}
