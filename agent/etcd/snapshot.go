package etcd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
)

// SnapshotInfo describes a snapshot Snapshot wrote.
type SnapshotInfo struct {
	// Size is the number of bytes written, etcd's trailer included.
	Size int64
	// SHA256 is the hex sha256 of what was written, trailer included:
	// what a store's checksum of the file must match.
	SHA256 string
	// Endpoint is the member the snapshot came from.
	Endpoint string
}

// trailerSize is the length of the sha256 etcd (3.5 and later) sends after
// the database, as the stream's last message.
const trailerSize = sha256.Size

// snapshotPath is Maintenance.Snapshot on the gateway.
const snapshotPath = "/v3/maintenance/snapshot"

// Snapshot streams a snapshot of the database from the first endpoint that
// answers and writes it to w as etcdctl's `snapshot save` does: the bolt
// database followed by etcd's trailer, the sha256 of the database, which
// etcdutl's `snapshot restore` checks. The trailer is checked here too; a
// stream without it, with a wrong one, or cut short is an error naming the
// endpoint, and what w received is then no snapshot.
//
// The next endpoint is tried only while nothing has been written to w: once
// a member has started sending, its failure is the answer. ctx bounds the
// whole transfer; the client's own timeout, meant for short calls, does
// not apply.
func (c *Client) Snapshot(ctx context.Context, endpoints []string, w io.Writer) (SnapshotInfo, error) {
	if len(endpoints) == 0 {
		return SnapshotInfo{}, errors.New("etcd: no endpoint to ask for a snapshot")
	}
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.Timeout = 0
	var errs []error
	for _, ep := range endpoints {
		info, started, err := snapshotOne(ctx, &hc, ep, w)
		if err == nil {
			return info, nil
		}
		errs = append(errs, err)
		if started || ctx.Err() != nil {
			break
		}
	}
	return SnapshotInfo{}, errors.Join(errs...)
}

// snapshotChunk is one message of the gateway's stream: newline-delimited
// JSON, each {"result": SnapshotResponse} or, when the call fails midway,
// {"error": google.rpc.Status}. Field names are the proto names (the
// gateway marshals with UseProtoNames) and bytes are base64. The messages'
// remaining_bytes is not needed: the trailer check catches a short stream.
type snapshotChunk struct {
	Result *struct {
		Blob []byte `json:"blob"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// snapshotOne takes the snapshot from one endpoint. started reports whether
// any byte reached w.
func snapshotOne(ctx context.Context, hc *http.Client, endpoint string, w io.Writer) (_ SnapshotInfo, started bool, _ error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("etcd %s%s: %s", endpoint, snapshotPath, fmt.Sprintf(format, args...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+snapshotPath, strings.NewReader("{}"))
	if err != nil {
		return SnapshotInfo{}, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return SnapshotInfo{}, false, fmt.Errorf("etcd %s%s: %w", endpoint, snapshotPath, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e snapshotChunk
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		return SnapshotInfo{}, false, &Error{Endpoint: endpoint, Status: resp.StatusCode, Message: msg}
	}

	tw := newTrailerWriter(w)
	dec := json.NewDecoder(resp.Body)
	for {
		var chunk snapshotChunk
		err := dec.Decode(&chunk)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return SnapshotInfo{}, tw.written > 0, fail("reading the stream after %d bytes: %v", tw.received(), err)
		}
		if chunk.Error != nil {
			return SnapshotInfo{}, tw.written > 0, fail("etcd ended the stream after %d bytes: %s (gRPC code %d)",
				tw.received(), chunk.Error.Message, chunk.Error.Code)
		}
		if chunk.Result == nil {
			continue
		}
		if err := tw.add(chunk.Result.Blob); err != nil {
			return SnapshotInfo{}, tw.written > 0, fail("writing the snapshot: %v", err)
		}
	}
	if err := tw.check(); err != nil {
		return SnapshotInfo{}, tw.written > 0, fail("%v", err)
	}
	// The trailer goes to w too: etcdutl verifies it on restore.
	if err := tw.flush(); err != nil {
		return SnapshotInfo{}, true, fail("writing the snapshot: %v", err)
	}
	return SnapshotInfo{Size: tw.written, SHA256: hex.EncodeToString(tw.all.Sum(nil)), Endpoint: endpoint}, true, nil
}

// trailerWriter passes a stream to w holding back its last trailerSize
// bytes, so that they can be checked against the sha256 of the rest before
// they are written.
type trailerWriter struct {
	w       io.Writer
	tail    []byte
	written int64
	db      hash.Hash // of the bytes before the tail
	all     hash.Hash // of everything written to w
}

func newTrailerWriter(w io.Writer) *trailerWriter {
	return &trailerWriter{w: w, db: sha256.New(), all: sha256.New()}
}

func (t *trailerWriter) received() int64 { return t.written + int64(len(t.tail)) }

func (t *trailerWriter) add(b []byte) error {
	t.tail = append(t.tail, b...)
	n := len(t.tail) - trailerSize
	if n <= 0 {
		return nil
	}
	if err := t.write(t.tail[:n]); err != nil {
		return err
	}
	t.db.Write(t.tail[:n])
	t.tail = append(t.tail[:0], t.tail[n:]...)
	return nil
}

func (t *trailerWriter) write(b []byte) error {
	n, err := t.w.Write(b)
	t.written += int64(n)
	t.all.Write(b[:n])
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// check reports whether the held-back bytes are the sha256 of the rest.
func (t *trailerWriter) check() error {
	if len(t.tail) < trailerSize || t.written == 0 {
		return fmt.Errorf("the stream ended after %d bytes, too short for a database and its sha256 trailer", t.received())
	}
	if sum := t.db.Sum(nil); !bytes.Equal(sum, t.tail) {
		return fmt.Errorf("the snapshot's sha256 trailer %x does not match its %d bytes of data (sha256 %x): corrupted, "+
			"cut short or sent by an etcd older than 3.5", t.tail, t.written, sum)
	}
	return nil
}

func (t *trailerWriter) flush() error {
	err := t.write(t.tail)
	t.tail = nil
	return err
}

// CheckSnapshot reads a snapshot as Snapshot writes it (a database and
// etcd's sha256 trailer), from a file or a store, and checks the trailer as
// etcdutl does before it restores. The returned info has no Endpoint.
func CheckSnapshot(r io.Reader) (SnapshotInfo, error) {
	tw := newTrailerWriter(io.Discard)
	if _, err := io.Copy(writerFunc(tw.add), r); err != nil {
		return SnapshotInfo{}, err
	}
	if err := tw.check(); err != nil {
		return SnapshotInfo{}, err
	}
	if err := tw.flush(); err != nil {
		return SnapshotInfo{}, err
	}
	return SnapshotInfo{Size: tw.written, SHA256: hex.EncodeToString(tw.all.Sum(nil))}, nil
}

type writerFunc func([]byte) error

func (f writerFunc) Write(b []byte) (int, error) {
	if err := f(b); err != nil {
		return 0, err
	}
	return len(b), nil
}
