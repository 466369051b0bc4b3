package etcd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seedhq/seed/pkg/testenv"
)

// gatewayStream renders what etcd's gateway sends for Maintenance.Snapshot:
// the database in chunks, then a chunk with its sha256 (trailer), as
// newline-delimited {"result": ...} objects.
func gatewayStream(db []byte, chunk int, trailer []byte) []byte {
	var out bytes.Buffer
	msg := func(blob []byte, remaining int) {
		b, _ := json.Marshal(map[string]any{"result": map[string]any{
			"header": map[string]any{"member_id": "1"}, "remaining_bytes": fmt.Sprint(remaining), "blob": blob, "version": "3.6.0"}})
		out.Write(b)
		out.WriteByte('\n')
	}
	for off := 0; off < len(db); off += chunk {
		end := min(off+chunk, len(db))
		msg(db[off:end], len(db)-end)
	}
	if trailer != nil {
		msg(trailer, 0)
	}
	return out.Bytes()
}

func fakeDB(n int) []byte {
	db := make([]byte, n)
	for i := range db {
		db[i] = byte(i * 7)
	}
	return db
}

func serveStream(t *testing.T, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/maintenance/snapshot" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The trailer is checked, and kept in what is written: etcdutl checks it
// again on restore.
func TestSnapshotChecksEtcdsTrailer(t *testing.T) {
	db := fakeDB(100_000)
	good := sha256.Sum256(db)
	corrupted := bytes.Clone(db)
	corrupted[4242] ^= 0x01
	badTrailer := good
	badTrailer[0] ^= 0x80

	tests := []struct {
		name    string
		stream  []byte
		wantErr string
	}{
		{"a good stream is written with its trailer", gatewayStream(db, 32*1024, good[:]), ""},
		{"a chunk the size of the trailer at the end is still the trailer", gatewayStream(db, 32, good[:]), ""},
		{"one byte flipped in the data is refused", gatewayStream(corrupted, 32*1024, good[:]), "does not match"},
		{"a wrong trailer is refused", gatewayStream(db, 32*1024, badTrailer[:]), "does not match"},
		{"a stream without a trailer (etcd before 3.5) is refused", gatewayStream(db, 32*1024, nil), "does not match"},
		{"a stream cut short is refused", gatewayStream(db[:50_000], 32*1024, good[:]), "does not match"},
		{"an empty stream is refused", nil, "too short"},
		{"an error from etcd midway is reported", append(gatewayStream(db[:32*1024], 32*1024, nil),
			[]byte(`{"error":{"code":14,"message":"etcdserver: server stopped","details":[]}}`+"\n")...), "server stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := serveStream(t, tt.stream)
			var out bytes.Buffer
			info, err := (&Client{HTTP: http.DefaultClient}).Snapshot(context.Background(), []string{ep}, &out)
			if tt.wantErr != "" {
				if _, cerr := CheckSnapshot(bytes.NewReader(out.Bytes())); cerr == nil {
					t.Errorf("CheckSnapshot finds no fault in what a refused stream wrote")
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), ep) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, ep, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := append(bytes.Clone(db), good[:]...)
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("wrote %d bytes, want the %d of the database and its trailer", out.Len(), len(want))
			}
			if checked, err := CheckSnapshot(bytes.NewReader(out.Bytes())); err != nil || checked.SHA256 != info.SHA256 || checked.Size != info.Size {
				t.Errorf("CheckSnapshot of what was written: %+v, %v; want %+v", checked, err, info)
			}
			sum := sha256.Sum256(want)
			if info != (SnapshotInfo{Size: int64(len(want)), SHA256: hex.EncodeToString(sum[:]), Endpoint: ep}) {
				t.Errorf("info = %+v, want size %d, sha256 %x of what was written, endpoint %s", info, len(want), sum, ep)
			}
		})
	}
}

// Endpoints are tried in order until one starts sending; after that, its
// failure is the answer (what was written cannot be taken back).
func TestSnapshotTriesTheNextEndpointOnlyBeforeAnyByte(t *testing.T) {
	db := fakeDB(10_000)
	sum := sha256.Sum256(db)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":14,"message":"etcdserver: not capable"}}`))
	}))
	t.Cleanup(refusing.Close)
	good := serveStream(t, gatewayStream(db, 4096, sum[:]))
	corrupt := serveStream(t, gatewayStream(db, 4096, make([]byte, 32)))

	var out bytes.Buffer
	c := &Client{HTTP: &http.Client{Timeout: 5 * time.Second}}
	info, err := c.Snapshot(context.Background(), []string{"http://127.0.0.1:1", refusing.URL, good}, &out)
	if err != nil || info.Endpoint != good {
		t.Fatalf("info = %+v, err = %v; want the snapshot from %s", info, err, good)
	}

	out.Reset()
	_, err = c.Snapshot(context.Background(), []string{corrupt, good}, &out)
	if err == nil || !strings.Contains(err.Error(), corrupt) || strings.Contains(err.Error(), good) {
		t.Fatalf("err = %v, want the failure of %s alone", err, corrupt)
	}
}

// A snapshot of a real etcd (testenv's, 3.6) through the gateway is a bolt
// database with etcd's trailer, in the shape etcdutl restores: a size that
// is a multiple of 512 plus the 32-byte sha256 (its hasChecksum test).
func TestSnapshotOfRealEtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := testenv.Start(ctx, t)
	c := &Client{HTTP: &http.Client{Timeout: 5 * time.Second}}

	var out bytes.Buffer
	info, err := c.Snapshot(ctx, []string{"http://127.0.0.1:1", env.EtcdURL}, &out)
	if err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	sum := sha256.Sum256(b)
	if info.Endpoint != env.EtcdURL || info.Size != int64(len(b)) || info.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("info = %+v, want endpoint %s, size %d, sha256 %x", info, env.EtcdURL, len(b), sum)
	}
	if len(b)%512 != sha256.Size {
		t.Errorf("size %d is not a multiple of 512 plus a sha256", len(b))
	}
	db, trailer := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(db); !bytes.Equal(got[:], trailer) {
		t.Errorf("the trailer written is not the sha256 of the database")
	}
	// bbolt's first meta page: a 16-byte page header, then the magic.
	if len(db) < 20 || binary.LittleEndian.Uint32(db[16:20]) != 0xED0CDAED {
		t.Errorf("the snapshot does not start with a bolt meta page")
	}
	t.Logf("Figure: a snapshot of testenv's etcd through the gateway: %d bytes", info.Size)
}
