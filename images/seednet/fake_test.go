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
	vxlan    fakeVXLAN
	// vxlanDeletes counts DeleteVXLAN calls.
	vxlanDeletes int
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
	f.routes = slices.DeleteFunc(f.routes, func(x route) bool { return x.key() == r.key() })
	f.routes = append(f.routes, r)
	return nil
}

func (f *fakeHost) DeleteRoute(_ context.Context, r route) error {
	f.routes = slices.DeleteFunc(f.routes, func(x route) bool { return x.key() == r.key() })
	return nil
}

func (f *fakeHost) ApplyIPTables(_ context.Context, payload string, _ [][]string) error {
	f.payload = payload
	return nil
}

// The fake's VXLAN device and its peers.
type fakeVXLAN struct {
	link    *vxlanLink
	peers   []vxlanPeer
	ensures int // calls that changed something
}

func (f *fakeHost) EnsureVXLAN(_ context.Context, l vxlanLink) (bool, error) {
	if f.vxlan.link != nil && *f.vxlan.link == l {
		return false, nil
	}
	f.vxlan.link = &l
	f.vxlan.ensures++
	return true, nil
}

func (f *fakeHost) DeleteVXLAN(context.Context) error {
	f.vxlanDeletes++
	if f.vxlan.link == nil {
		return nil
	}
	f.vxlan = fakeVXLAN{}
	// The kernel removes the device's routes with it.
	f.routes = slices.DeleteFunc(f.routes, func(r route) bool { return r.Dev == vxlanDevice })
	return nil
}

func (f *fakeHost) VXLANPeers(context.Context) ([]vxlanPeer, error) {
	return slices.Clone(f.vxlan.peers), nil
}

func (f *fakeHost) ReplaceVXLANPeer(_ context.Context, p vxlanPeer) error {
	f.vxlan.peers = slices.DeleteFunc(f.vxlan.peers, func(x vxlanPeer) bool { return x.VTEP == p.VTEP || x.MAC == p.MAC })
	f.vxlan.peers = append(f.vxlan.peers, p)
	return nil
}

func (f *fakeHost) DeleteVXLANPeer(_ context.Context, p vxlanPeer) error {
	f.vxlan.peers = slices.DeleteFunc(f.vxlan.peers, func(x vxlanPeer) bool { return x == p })
	return nil
}
