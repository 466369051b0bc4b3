package main

import (
	"bytes"
	"context"
	"slices"
)

// fakeHost records what seednet did to the machine.
type fakeHost struct {
	conflist []byte
	routes   []route
	payload  string
	writes   int
	replaced int
}

var _ host = (*fakeHost)(nil)

func (f *fakeHost) WriteConflist(data []byte) (bool, error) {
	if bytes.Equal(f.conflist, data) {
		return false, nil
	}
	f.conflist = data
	f.writes++
	return true, nil
}

func (f *fakeHost) Routes(context.Context) ([]route, error) { return slices.Clone(f.routes), nil }

func (f *fakeHost) ReplaceRoute(_ context.Context, r route) error {
	f.replaced++
	f.routes = slices.DeleteFunc(f.routes, func(x route) bool { return x.Dst == r.Dst })
	f.routes = append(f.routes, r)
	return nil
}

func (f *fakeHost) DeleteRoute(_ context.Context, r route) error {
	f.routes = slices.DeleteFunc(f.routes, func(x route) bool { return x.Dst == r.Dst })
	return nil
}

func (f *fakeHost) ApplyIPTables(_ context.Context, payload string, _ [][]string) error {
	f.payload = payload
	return nil
}
