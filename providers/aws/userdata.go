package aws

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"path"
	"regexp"
	"strings"

	"github.com/seedhq/seed/providers"
)

// maxUserData is EC2's limit on user data, before base64.
const maxUserData = 16 * 1024

// Where a machine keeps what Seed gives it; the Docker provider's node
// image uses the same paths.
const (
	seedDir             = "/var/lib/seed"
	bootstrapScriptPath = seedDir + "/bootstrap/script"
	providerIDPath      = seedDir + "/provider-id"
)

var versionRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)$`)

// packageVersion turns "v1.34.2" into the pkgs.k8s.io package version
// prefix "1.34.2" and repository "v1.34".
func packageVersion(v string) (pkgRepo [2]string, err error) {
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return pkgRepo, fmt.Errorf("kubernetes version %q must look like v1.34.2", v)
	}
	return [2]string{m[1] + "." + m[2] + "." + m[3], "v" + m[1] + "." + m[2]}, nil
}

func validateBootstrap(b providers.Bootstrap) error {
	seen := map[string]bool{}
	for _, f := range b.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("bootstrap file path %q must be absolute and clean", f.Path)
		}
		if f.Path == providerIDPath || f.Path == bootstrapScriptPath || strings.HasPrefix(f.Path, bootstrapScriptPath+"/") {
			return fmt.Errorf("bootstrap file %q would overwrite what the provider writes", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("bootstrap file %q is given twice", f.Path)
		}
		seen[f.Path] = true
	}
	return nil
}

// userDataInput is everything a launch's user data says. One launch may
// start several machines; each finds its name, and its bootstrap, by its
// launch index.
type userDataInput struct {
	// Version is the Kubernetes version, e.g. "v1.34.2".
	Version string
	// Names in launch-index order; Boot[i] indexes Bootstraps.
	Names []string
	Boot  []int
	// Bootstraps are the distinct bootstraps, rendered as shell (see
	// bootstrapShell), or, for a payload kept in S3, a URL to fetch one from.
	Bootstraps []string
	PayloadURL string
	// Images are the staged images the machines import, each with a
	// presigned URL of its tarball. Names are [a-z0-9-] (stagedNameRE),
	// safe unquoted in a shell word.
	Images []stagedURL
	// EndpointIP, for a control plane, is the endpoint address (the VIP)
	// the machine adds to its interface while EC2 maps it there.
	EndpointIP string
}

func userDataFor(specs []providers.MachineSpec, images []stagedURL) userDataInput {
	in := userDataInput{Version: specs[0].KubernetesVersion, Images: images}
	index := map[string]int{}
	for _, s := range specs {
		b := bootstrapShell(s.Bootstrap)
		i, ok := index[b]
		if !ok {
			i = len(in.Bootstraps)
			index[b] = i
			in.Bootstraps = append(in.Bootstraps, b)
		}
		in.Names = append(in.Names, s.Name)
		in.Boot = append(in.Boot, i)
	}
	return in
}

// bootstrapShell renders a bootstrap as shell that writes its files and
// its script. Contents travel base64-encoded, so nothing in them is ever
// interpreted by the shell, and nothing echoes them.
func bootstrapShell(b providers.Bootstrap) string {
	var s strings.Builder
	for _, f := range b.Files {
		mode := f.Mode & 0o7777
		if mode == 0 {
			mode = 0o644
		}
		fmt.Fprintf(&s, "write_file %s %04o %s\n", shellQuote(f.Path), mode, base64.StdEncoding.EncodeToString(f.Content))
	}
	fmt.Fprintf(&s, "write_file %s 0700 %s\n", bootstrapScriptPath, base64.StdEncoding.EncodeToString([]byte(b.Script)))
	return s.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// renderUserData returns the gzipped script, which cloud-init unpacks
// (it recognises gzip by its magic bytes). Gzip rather than a MIME
// multipart: one part is all it is, and the packages, keys and bootstrap
// files compress several times over. Callers base64 it for RunInstances.
func renderUserData(in userDataInput) ([]byte, error) {
	pkgVersion, err := packageVersion(in.Version)
	if err != nil {
		return nil, err
	}
	var s strings.Builder
	s.WriteString(userDataHead)
	fmt.Fprintf(&s, "K8S_PACKAGE_VERSION=%s\nK8S_REPO=%s\n", pkgVersion[0], pkgVersion[1])
	s.WriteString("\ncase \"$launch_index\" in\n")
	for i, n := range in.Names {
		fmt.Fprintf(&s, "  %d) name=%s; boot=%d ;;\n", i, n, in.Boot[i])
	}
	s.WriteString("  *) echo \"seed: no machine for launch index $launch_index\" >&2; exit 1 ;;\nesac\n")
	if len(in.Images) > 0 {
		// Fetched first: a URL presigned with temporary credentials (the
		// agent's instance profile) stops working when they expire, which
		// can come before presignTTL.
		s.WriteString("\n# Images staged in the cluster's bucket, imported once containerd runs.\ninstall -d -m 0700 \"$SEED_DIR/staged-images\"\n")
		for _, img := range in.Images {
			fmt.Fprintf(&s, "curl -fsS --retry 10 -o \"$SEED_DIR/staged-images/%s.tar\" %s\n", img.name, shellQuote(img.url))
		}
	}
	s.WriteString(userDataBody)
	if in.EndpointIP != "" {
		if net.ParseIP(in.EndpointIP).To4() == nil {
			return nil, fmt.Errorf("endpoint address %q is not an IPv4 address", in.EndpointIP)
		}
		// Before the bootstrap, which reaches the API server through the
		// endpoint, and for the machine's life: the endpoint may come and
		// go long after first boot.
		fmt.Fprintf(&s, endpointClaim, endpointClaimScript, in.EndpointIP)
	}
	if len(in.Images) > 0 {
		s.WriteString("\n# Into containerd's namespace for Kubernetes, where the kubelet finds them.\n")
		for _, img := range in.Images {
			fmt.Fprintf(&s, "ctr -n k8s.io images import \"$SEED_DIR/staged-images/%s.tar\"\n", img.name)
		}
		s.WriteString("rm -rf \"$SEED_DIR/staged-images\"\n")
	}
	s.WriteString("\n# This machine's bootstrap: its files, then its script.\n")
	if in.PayloadURL != "" {
		// Kept out of user data, which pods that reach IMDS can read; the
		// URL expires soon after boot.
		fmt.Fprintf(&s, "curl -fsS --retry 10 -o \"$SEED_DIR/payload\" %s\n. \"$SEED_DIR/payload\"\nrm -f \"$SEED_DIR/payload\"\n", shellQuote(in.PayloadURL))
	} else {
		s.WriteString("case \"$boot\" in\n")
		for i, b := range in.Bootstraps {
			fmt.Fprintf(&s, "%d)\n%s;;\n", i, b)
		}
		s.WriteString("esac\n")
	}
	s.WriteString(userDataTail)

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write([]byte(s.String())); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// userData renders the launch's user data, base64-encoded for RunInstances,
// with the staged images the machines import. The control plane's
// bootstrap goes to the cluster's bucket when there is one this process
// knows, and the user data only fetches it.
func (p *provider) userData(ctx context.Context, specs []providers.MachineSpec, images []stagedURL, endpointIP string) (string, error) {
	in := userDataFor(specs, images)
	in.EndpointIP = endpointIP
	if specs[0].Role == providers.RoleControlPlane {
		url, err := p.stagePayload(ctx, specs[0].Name, in.Bootstraps[0])
		if err != nil {
			return "", err
		}
		in.PayloadURL = url
	}
	ud, err := renderUserData(in)
	if err != nil {
		return "", err
	}
	if len(ud) > maxUserData {
		return "", providers.NewError(providers.KindInvalid, "rendering user data",
			fmt.Errorf("user data is %d bytes gzipped, over EC2's %d: the bootstrap files and the URLs of %d staged images are too large", len(ud), maxUserData, len(images)))
	}
	return base64.StdEncoding.EncodeToString(ud), nil
}

// The script runs once, as root, through cloud-init's scripts-user (per
// instance). It never traces (no set -x) and never prints what it writes:
// bootstrap files and script carry the join token.
const userDataHead = `#!/bin/bash
# Written by Seed's AWS provider: installs containerd, kubelet, kubeadm and
# kubectl, then runs this machine's Seed bootstrap once.
set -euo pipefail
umask 022
SEED_DIR=/var/lib/seed
if [ -e "$SEED_DIR/bootstrapped" ]; then exit 0; fi
install -d -m 0755 "$SEED_DIR"

imds() {
  local token
  token=$(curl -fsS --retry 10 --retry-connrefused -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token)
  curl -fsS --retry 10 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
instance_id=$(imds instance-id)
az=$(imds placement/availability-zone)
launch_index=$(imds ami-launch-index)
local_ip=$(imds local-ipv4)
`

const userDataBody = `
provider_id="aws:///$az/$instance_id"
printf '%s' "$provider_id" > "$SEED_DIR/provider-id"
printf '%s' "$name" > "$SEED_DIR/machine-name"

# The Node name is the machine name; keep cloud-init from resetting it.
printf 'preserve_hostname: true\n' > /etc/cloud/cloud.cfg.d/99-seed-hostname.cfg
hostnamectl set-hostname "$name"
printf '%s %s\n' "$local_ip" "$name" >> /etc/hosts

printf 'overlay\nbr_netfilter\n' > /etc/modules-load.d/seed.conf
modprobe overlay
modprobe br_netfilter
printf 'net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n' > /etc/sysctl.d/99-seed.conf
sysctl --system >/dev/null
swapoff -a

# containerd from Docker's repository, Kubernetes from pkgs.k8s.io.
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -q -y -o DPkg::Lock::Timeout=600 -o Acquire::Retries=5 "$@"; }
apt_get update
apt_get install ca-certificates curl gpg
install -d -m 0755 /etc/apt/keyrings
. /etc/os-release
curl -fsSL --retry 10 https://download.docker.com/linux/debian/gpg | gpg --batch --yes --dearmor -o /etc/apt/keyrings/docker.gpg
printf 'deb [signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian %s stable\n' "$VERSION_CODENAME" > /etc/apt/sources.list.d/docker.list
curl -fsSL --retry 10 "https://pkgs.k8s.io/core:/stable:/$K8S_REPO/deb/Release.key" | gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes.gpg
printf 'deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] https://pkgs.k8s.io/core:/stable:/%s/deb/ /\n' "$K8S_REPO" > /etc/apt/sources.list.d/kubernetes.list
apt_get update
apt_get install containerd.io "kubelet=$K8S_PACKAGE_VERSION-*" "kubeadm=$K8S_PACKAGE_VERSION-*" "kubectl=$K8S_PACKAGE_VERSION-*"
apt-mark hold containerd.io kubelet kubeadm kubectl >/dev/null

# The package's config disables CRI; kubelet wants it, with systemd cgroups.
containerd config default > /etc/containerd/config.toml
sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
systemctl restart containerd
systemctl enable kubelet

write_file() {
  install -d -m 0755 "$(dirname "$1")"
  (umask 077; printf '%s' "$3" | base64 -d > "$1")
  chmod "$2" "$1"
}
`

const userDataTail = `
SEED_MACHINE_NAME="$name" SEED_PROVIDER_ID="$provider_id" /bin/bash "$SEED_DIR/bootstrap/script"
touch "$SEED_DIR/bootstrapped"
`

// endpointClaim installs the endpoint claim loop as a service and starts
// it: %[1]s is the script, %[2]s the endpoint address.
const endpointClaim = `
# The control-plane endpoint: an address EC2 maps to one control plane at a
# time. This machine carries it on its interface while IMDS lists it here.
cat > /usr/local/sbin/seed-endpoint <<'SEED_ENDPOINT'
%[1]sSEED_ENDPOINT
chmod 0755 /usr/local/sbin/seed-endpoint
cat > /etc/systemd/system/seed-endpoint.service <<'SEED_ENDPOINT'
[Unit]
Description=Seed: carry the control-plane endpoint address while EC2 maps it to this machine
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/sbin/seed-endpoint %[2]s
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
SEED_ENDPOINT
systemctl daemon-reload
systemctl enable --now seed-endpoint.service
`

// endpointClaimScript polls IMDS (IMDSv2) every two seconds. When the
// endpoint address is among the primary interface's local-ipv4s it adds it
// (/32) to that interface; when it is not, it removes it. EC2 remaps a
// moved address asynchronously and documents local-ipv4s as the way to
// see that the remap is done. It calls no AWS API, so the instance role
// needs nothing for it.
const endpointClaimScript = `#!/bin/bash
# Written by Seed's AWS provider. Usage: seed-endpoint <address>
set -u
vip=$1
token=
token_at=0
imds() {
  local now
  now=$(date +%s)
  if [ -z "$token" ] || [ $((now - token_at)) -gt 300 ]; then
    token=$(curl -fsS -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' http://169.254.169.254/latest/api/token) || { token=; return 1; }
    token_at=$now
  fi
  curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
device_of() {
  local d
  for d in /sys/class/net/*; do
    if [ "$(cat "$d/address" 2>/dev/null)" = "$1" ]; then
      basename "$d"
      return 0
    fi
  done
  return 1
}
has() { ip -o -4 addr show dev "$1" | grep -qF " $vip/32 "; }
while :; do
  if mac=$(imds mac) && dev=$(device_of "$mac") && ips=$(imds "network/interfaces/macs/$mac/local-ipv4s"); then
    if printf '%s\n' "$ips" | grep -qxF "$vip"; then
      if ! has "$dev"; then
        ip addr add "$vip/32" dev "$dev" && echo "seed-endpoint: EC2 maps $vip here; added it to $dev"
      fi
    elif has "$dev"; then
      ip addr del "$vip/32" dev "$dev" && echo "seed-endpoint: EC2 no longer maps $vip here; removed it from $dev"
    fi
  fi
  sleep 2
done
`
