// Package docker is the Docker provider: machines are containers running a
// node image on the local engine, one bridge network per cluster. It speaks
// the Docker Engine HTTP API over the unix socket itself, with no SDK and no
// docker CLI, because the agent that calls it runs from a scratch image.
// Everything it needs to find again lives in container, volume and network
// labels, so it works from the seed CLI and from inside the cluster alike.
package docker
