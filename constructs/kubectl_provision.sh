# istio-kubectl provisioning: prints the path of the kubectl the steps run, or fails saying why.
#   sh kubectl_provision.sh     (run by kubectl_run.sh, in the stack's directory)
# The workspace's `kubectl` settings arrive as environment variables set by every local-exec
# provisioner of the stack (constructs/kubectl.py):
#   ISTIO_KUBECTL_PROVISION     auto (PATH, else download), always (download), never (PATH)
#   ISTIO_KUBECTL_VERSION       for example v1.35.2
#   ISTIO_KUBECTL_DOWNLOAD_URL  the binary is <url>/<version>/bin/<os>/<arch>/kubectl
#   ISTIO_KUBECTL_SHA256_<OS>_<ARCH>   the pinned digest per platform, e.g. ..._LINUX_AMD64
# A download lands in .terraform/istio-kubectl/<version>/<os>-<arch>/kubectl (Terraform Cloud
# runners allow binaries in the working directory only, and keep nothing between runs). It is
# written to a temporary file beside it and renamed into place only once its SHA-256 matches the
# pin, and a cached copy is checked again before every use: no unverified file is ever run.
# POSIX sh and common tools only (curl or wget, sha256sum or shasum): no python on those runners.
set -eu

# The first argument is the message's first line; any more are its continuation lines.
say() {
  printf 'istio-kubectl: %s\n' "$1" >&2
  shift
  [ "$#" -eq 0 ] || printf '  %s\n' "$@" >&2
}

fail() {
  say "$@"
  exit 2
}

mode=${ISTIO_KUBECTL_PROVISION:-never}
case $mode in
  auto | always | never) ;;
  *) fail "ISTIO_KUBECTL_PROVISION='$mode' is not auto, always or never" ;;
esac

if [ "$mode" != always ] && on_path=$(command -v kubectl 2>/dev/null); then
  printf '%s\n' "$on_path"
  exit 0
fi
if [ "$mode" = never ]; then
  # printf is a shell builtin: this message still prints on a runner with a bare PATH.
  say "kubectl was not found on PATH, so nothing was applied or deleted." \
    "The CRDs and the control plane are applied with kubectl by the machine running Terraform," \
    "and this workspace sets kubectl.provision: never. Install kubectl there, or set" \
    "kubectl.provision: auto (or always) to download the pinned, verified release, then run" \
    "Terraform again."
  exit 127
fi

# printf, command and the tests are shell builtins; these are not. A bare PATH says so plainly.
missing=""
for tool in uname mkdir mktemp chmod mv rm cat tr find sleep; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  fail "kubectl is needed but cannot be downloaded: these tools are not on PATH:$missing;" \
    "nothing was applied or deleted. Run Terraform where they are (any Linux or macOS has" \
    "them), or put kubectl on PATH."
fi

version=${ISTIO_KUBECTL_VERSION:-}
base=${ISTIO_KUBECTL_DOWNLOAD_URL:-}
# The version becomes a directory name: only the shape the config accepts (vX.Y.Z).
case $version in
  v[0-9]*.[0-9]*.[0-9]*) ;;
  *) fail "ISTIO_KUBECTL_VERSION='$version' is not a kubectl version such as v1.35.2" ;;
esac
case $version in
  *[!v0-9.]*) fail "ISTIO_KUBECTL_VERSION='$version' is not a kubectl version such as v1.35.2" ;;
esac
case $base in
  http://?* | https://?*) ;;
  *) fail "ISTIO_KUBECTL_DOWNLOAD_URL='$base' is not an http:// or https:// URL" ;;
esac

case $(uname -s) in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) fail "kubectl cannot be downloaded for $(uname -s): only linux and darwin are pinned." \
    "Put kubectl on PATH and set kubectl.provision: auto (or never)." ;;
esac
machine=$(uname -m)
case $machine in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) fail "kubectl cannot be downloaded for the $machine architecture: only amd64 and arm64 are" \
    "pinned. Put kubectl on PATH and set kubectl.provision: auto (or never)." ;;
esac
platform=$os-$arch
case $platform in
  linux-amd64) expected=${ISTIO_KUBECTL_SHA256_LINUX_AMD64:-} ;;
  linux-arm64) expected=${ISTIO_KUBECTL_SHA256_LINUX_ARM64:-} ;;
  darwin-amd64) expected=${ISTIO_KUBECTL_SHA256_DARWIN_AMD64:-} ;;
  darwin-arm64) expected=${ISTIO_KUBECTL_SHA256_DARWIN_ARM64:-} ;;
esac
if [ -z "$expected" ]; then
  fail "no SHA-256 is pinned for kubectl $version on $platform, the platform running Terraform," \
    "so nothing was downloaded, applied or deleted. Add kubectl.sha256.$platform to the" \
    "workspace's config file (the digest is published as" \
    "$base/$version/bin/$os/$arch/kubectl.sha256) and synthesize again, or put kubectl on PATH" \
    "and set kubectl.provision: auto."
fi
case $expected in
  *[!0-9a-f]*) fail "the pinned SHA-256 for $platform is not 64 lower-case hex digits: $expected" ;;
esac
[ "${#expected}" -eq 64 ] ||
  fail "the pinned SHA-256 for $platform is not 64 lower-case hex digits: $expected"

url=$base/$version/bin/$os/$arch/kubectl
dir=.terraform/istio-kubectl/$version/$platform
binary=$dir/kubectl
lock=$dir/.lock

# Checked before anything is downloaded: sha256sum (Linux), else shasum -a 256 (macOS).
if command -v sha256sum >/dev/null 2>&1; then
  hasher=sha256sum
elif command -v shasum >/dev/null 2>&1; then
  hasher=shasum
else
  fail "neither sha256sum nor shasum is installed, so a kubectl download could not be verified;" \
    "nothing was downloaded, applied or deleted. Install one (coreutils, or perl's shasum), or" \
    "put kubectl on PATH and set kubectl.provision: auto."
fi

# Prints the SHA-256 of a file; nothing if it cannot be read, which then matches no pin.
digest_of() {
  if [ "$hasher" = sha256sum ]; then
    sum=$(sha256sum <"$1") || sum=""
  else
    sum=$(shasum -a 256 <"$1") || sum=""
  fi
  printf '%s\n' "${sum%%[!0-9a-f]*}"
}

# Succeeds when the cached binary exists and still has the pinned digest.
cached_is_verified() {
  [ -f "$binary" ] || return 1
  actual=$(digest_of "$binary")
  if [ "$actual" = "$expected" ]; then
    return 0
  fi
  say "ignoring $binary: its SHA-256 is $actual, not the pinned $expected; downloading it again"
  return 1
}

# Absolute, so kubectl_run.sh may run it from any directory.
use_binary() {
  printf '%s/%s\n' "$PWD" "$binary"
  exit 0
}

if cached_is_verified; then
  use_binary
fi

mkdir -p "$dir"
# One download however many steps start at once: mkdir is atomic, so one step holds the lock
# and the others wait, then find the verified binary. A lock whose holder has died (its pid is
# gone) or that is older than the longest download allowed is taken over. The lock only saves
# downloads: a wrongly broken one costs a second, equally verified, download and rename.
tmp=""
errors=""
cleanup() {
  [ -z "$tmp" ] || rm -f "$tmp"
  [ -z "$errors" ] || rm -f "$errors"
  [ ! -f "$lock/pid" ] || [ "$(cat "$lock/pid" 2>/dev/null)" != "$$" ] || rm -rf "$lock"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
waited=0
until mkdir "$lock" 2>/dev/null; do
  holder=$(cat "$lock/pid" 2>/dev/null || true)
  if { [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; } ||
    [ -n "$(find "$lock" -maxdepth 0 -mmin +15 2>/dev/null)" ]; then
    say "taking over the stale download lock $lock"
    rm -rf "$lock"
    continue
  fi
  if [ "$waited" -ge 900 ]; then
    fail "waited 15 minutes for another step's kubectl download (lock $lock); if no Terraform" \
      "run is active on this machine, remove that directory and run Terraform again."
  fi
  sleep 1
  waited=$((waited + 1))
done
printf '%s\n' "$$" >"$lock/pid"

if cached_is_verified; then # another step downloaded it while this one waited
  use_binary
fi

tmp=$(mktemp "$dir/.kubectl.XXXXXX")
errors=$(mktemp "$dir/.errors.XXXXXX")
unreached="so nothing was applied or deleted. Check that the runner can reach the URL, or set"
if command -v curl >/dev/null 2>&1; then
  # -f: an HTTP error is a failure, not a saved error page. -w: the status, for the message.
  if ! status=$(curl -fsSL --proto '=http,https' --retry 2 --connect-timeout 30 --max-time 600 \
    -o "$tmp" -w '%{http_code}' "$url" 2>"$errors"); then
    reason=$(tr '\n' ' ' <"$errors")
    fail "downloading kubectl from $url failed" \
      "(HTTP status ${status:-000}; ${reason:-curl gave no reason})," \
      "$unreached kubectl.download_url to a mirror it can reach."
  fi
elif command -v wget >/dev/null 2>&1; then
  wget -q -O "$tmp" "$url" 2>"$errors" || {
    code=$?
    reason=$(tr '\n' ' ' <"$errors")
    fail "downloading kubectl from $url with wget failed (exit status $code${reason:+: $reason})," \
      "$unreached kubectl.download_url to a mirror it can reach."
  }
else
  where="kubectl.provision is always, but"
  [ "$mode" = always ] || where="kubectl is not on PATH and"
  fail "$where kubectl $version cannot be downloaded: neither curl nor wget is installed," \
    "so nothing was applied or deleted. Install curl (or wget), or kubectl, on the machine" \
    "running Terraform."
fi

actual=$(digest_of "$tmp")
if [ "$actual" != "$expected" ]; then
  fail "the kubectl downloaded from $url has SHA-256 $actual, but $expected is pinned" \
    "(kubectl.sha256.$platform); it was deleted without running, and nothing was applied or" \
    "deleted. If a mirror serves it, check that it serves the official $version release; if you" \
    "changed kubectl.version, pin the digest published in $url.sha256."
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$binary"
tmp=""
say "downloaded kubectl $version for $platform from $url (SHA-256 verified)"
use_binary
