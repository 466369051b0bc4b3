package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxSpecSize is the most a ConfigMap can hold; a larger spec could never be
// stored for the agent, and reading it all would only waste memory.
const MaxSpecSize = 1 << 20

// stdinName is what the messages call the spec when -f - reads it.
const stdinName = "stdin"

// ReadSpec reads the spec from file, or from in when file is "-", and says
// what to call its source in messages.
func ReadSpec(in io.Reader, file string) ([]byte, string, error) {
	if file == "-" {
		if in == nil {
			return nil, "", errors.New("reading the cluster spec from stdin: no input stream")
		}
		data, err := readLimited(in, stdinName)
		return data, stdinName, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, "", fmt.Errorf("reading the cluster spec: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, file)
	return data, file, err
}

func readLimited(r io.Reader, source string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster spec from %s: %w", source, err)
	}
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("the cluster spec in %s is larger than 1 MiB, the most a ConfigMap holds: it cannot be a cluster spec", source)
	}
	return data, nil
}
