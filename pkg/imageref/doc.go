// Package imageref parses container image references the way Docker and
// containerd read them (distribution's grammar), and names them as
// containerd does, without the distribution module: `seed load image`
// checks what the user typed and tells the node which names to expect.
package imageref
