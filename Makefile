# Every target calls a script in hack/; the scripts are the source of truth.
.PHONY: all build images up down test unit integration e2e conformance bench lint verify clean

all: build

## build: compile bin/seed and bin/agent
build:
	hack/build.sh

## images: build the node image (Kubernetes from source), the pod network image (bin/network-image) and the agent image; cached
images:
	hack/build-images.sh
	hack/build-agent-image.sh

## up: bring up a local cluster and hand it to its agent (installs and starts Docker if needed)
up:
	hack/up.sh

## down: delete the local cluster
down:
	hack/down.sh

## test: every test (unit, integration against a real kube-apiserver, end-to-end on Docker)
test:
	hack/test.sh all

unit:
	hack/test.sh unit

integration:
	hack/test.sh integration

e2e:
	hack/test.sh e2e

## conformance: every upstream [Conformance] spec (e2e.test and its images built from source, cached) against a fresh 3-node cluster
conformance:
	hack/conformance.sh full

## bench: benchmarks and the scripts that print timing figures
bench:
	hack/bench.sh

## lint: golangci-lint and the hack/verify-*.sh checks
lint verify:
	hack/verify.sh

clean:
	rm -rf bin _out
