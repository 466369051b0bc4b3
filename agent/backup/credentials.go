package backup

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// keys are the store's credentials, as read from a shared-credentials file.
type keys struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// parseSharedCredentials reads the default profile of an AWS
// shared-credentials file (Store.Credentials, Velero's "cloud" key). The
// SDK only reads such files from disk, and the agent's keys live in a
// Secret; this is the small part of the format that holds keys. A default
// profile with neither key is no keys (the machine's own identity); one
// key without the other is an error.
func parseSharedCredentials(b []byte) (keys, error) {
	var k keys
	section, sawDefault := "", false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return keys{}, fmt.Errorf("the store's credentials, line %d: a section header without its ]", n)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			sawDefault = sawDefault || section == "default"
			continue
		}
		if section != "default" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return keys{}, fmt.Errorf("the store's credentials, line %d: want key = value", n)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "aws_access_key_id":
			k.AccessKeyID = value
		case "aws_secret_access_key":
			k.SecretAccessKey = value
		case "aws_session_token":
			k.SessionToken = value
		}
	}
	if err := sc.Err(); err != nil {
		return keys{}, fmt.Errorf("reading the store's credentials: %w", err)
	}
	if sawDefault && k == (keys{}) {
		return keys{}, nil
	}
	if k.AccessKeyID == "" || k.SecretAccessKey == "" {
		return keys{}, fmt.Errorf("the store's credentials have no aws_access_key_id and aws_secret_access_key in their [default] profile")
	}
	return k, nil
}
