package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/seedhq/seed/pkg/imageref"
	"github.com/seedhq/seed/providers"
	"github.com/seedhq/seed/providers/fake"
)

type fakeEngine struct {
	images map[string]bool
	saved  [][]string
}

func (e *fakeEngine) Has(_ context.Context, ref string) error {
	if !e.images[ref] {
		return providers.NewError(providers.KindNotFound, "inspecting image "+ref, errors.New("No such image: "+ref))
	}
	return nil
}

func (e *fakeEngine) Save(_ context.Context, refs []string) (io.ReadCloser, error) {
	e.saved = append(e.saved, refs)
	return io.NopCloser(strings.NewReader("archive")), nil
}

func TestParseImageRefsNamesEveryBadReferenceAndDropsRepeats(t *testing.T) {
	if _, err := ParseImageRefs(nil); err == nil {
		t.Error("no images: want an error")
	}
	_, err := ParseImageRefs([]string{"good:v1", "Bad:v1", "also bad", "fine"})
	if err == nil || !strings.Contains(err.Error(), `"Bad:v1"`) || !strings.Contains(err.Error(), `"also bad"`) ||
		!strings.HasPrefix(err.Error(), "nothing loaded") {
		t.Errorf("got %v, want one error naming both bad references", err)
	}
	refs, err := ParseImageRefs([]string{"app", "app:latest", "docker.io/library/app", "other:v1"})
	if err != nil || len(refs) != 2 {
		t.Errorf("got %v, %v; want app and other:v1 once each", refs, err)
	}
}

func TestLoadImagesLoadsNothingUnlessTheEngineHasEveryImage(t *testing.T) {
	p := fake.New(nil)
	if _, err := p.CreateMachine(t.Context(), providers.MachineSpec{Name: "m1", Pool: "workers"}); err != nil {
		t.Fatal(err)
	}
	e := &fakeEngine{images: map[string]bool{"app:v1": true}}
	var out bytes.Buffer
	err := LoadImages(t.Context(), LoadImagesOptions{
		// Never reached: the checks come first.
		Config:   &rest.Config{Host: "https://127.0.0.1:1"},
		Provider: p, Engine: e, Refs: []string{"app:v1", "missing:v2", "gone"}, Out: &out,
	})
	if err == nil || !strings.Contains(err.Error(), "missing:v2, gone:latest") || !strings.HasPrefix(err.Error(), "nothing loaded") {
		t.Errorf("got %v, want an error naming both missing images", err)
	}
	if p.Calls(fake.MethodLoadImage) != 0 || p.Calls(fake.MethodListMachines) != 0 || len(e.saved) != 0 {
		t.Errorf("something was loaded: %d LoadImage, %d ListMachines calls, %d saves", p.Calls(fake.MethodLoadImage), p.Calls(fake.MethodListMachines), len(e.saved))
	}
}

func TestMergeImagesIsIdempotentAndKeepsOneSpellingOfEachImage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cur, refs []string
		want      []string
	}{
		{"into nothing", nil, []string{"b:v1", "a:v1"}, []string{"a:v1", "b:v1"}},
		{"again", []string{"a:v1", "b:v1"}, []string{"b:v1", "a:v1"}, []string{"a:v1", "b:v1"}},
		{"another spelling", []string{"docker.io/library/a:latest"}, []string{"a:latest"}, []string{"docker.io/library/a:latest"}},
		{"a new tag", []string{"a:v1"}, []string{"a:v2"}, []string{"a:v1", "a:v2"}},
		{"blank lines", []string{"", "a:v1"}, nil, []string{"a:v1"}},
	} {
		if got := MergeImages(tc.cur, tc.refs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: MergeImages(%v, %v) = %v, want %v", tc.name, tc.cur, tc.refs, got, tc.want)
		}
	}
}

func TestForgetFromRemovesTheImageHoweverItWasWritten(t *testing.T) {
	r, _ := imageref.Parse("a")
	got := ForgetFrom([]string{"docker.io/library/a:latest", "a:v1", "b"}, r)
	if !slices.Equal(got, []string{"a:v1", "b"}) {
		t.Errorf("got %v", got)
	}
	if got := parseImageList("a:v1\n\n  b:v2 \n"); !slices.Equal(got, []string{"a:v1", "b:v2"}) {
		t.Errorf("parseImageList = %v", got)
	}
}
