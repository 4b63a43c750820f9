# istio-kubectl: the one program every provisioner of the stack runs, as
#   sh kubectl_run.sh CREDENTIALS KUBECONFIG CONTEXT ACTION ARGUMENT
# Terraform passes each value as its own argv entry and no shell ever parses them: they are only
# expanded inside double quotes here. Manifest bytes reach kubectl's stdin straight from the file,
# so a `$(...)` in a manifest arrives literally.
set -eu

fail() {
  printf 'istio-kubectl: %s\n' "$*" >&2
  exit 2
}

if [ "$#" -ne 5 ]; then
  fail "expected 5 arguments, got $#"
fi
credentials=$1 kubeconfig=$2 context=$3 action=$4 argument=$5

if ! command -v kubectl >/dev/null 2>&1; then
  # printf is a shell builtin: this message still prints on a runner with a bare PATH.
  printf '%s\n' >&2 \
    "istio-kubectl: kubectl was not found on PATH, so nothing was applied or deleted." \
    "The CRD and the IstioOperator are applied with kubectl by the machine running Terraform." \
    "Install kubectl there (Terraform Cloud remote runs have none: use an agent pool whose" \
    "image has kubectl, or the workspace's local execution mode), then run Terraform again."
  exit 127
fi

# Go's strconv.ParseBool, as the kubernetes provider reads KUBE_INSECURE.
is_true() {
  case $1 in
    1 | t | T | TRUE | true | True) return 0 ;;
    "" | 0 | f | F | FALSE | false | False) return 1 ;;
    *) fail "KUBE_INSECURE='$1' is not a boolean" ;;
  esac
}

# Build a private kubeconfig from the KUBE_* variables the kubernetes provider reads, so both aim
# at the same cluster. Secrets go to files with printf, a shell builtin: never into an argv.
# Anything set that would not be carried over to kubectl is refused rather than dropped.
kubeconfig_from_environment() {
  for unsupported in "KUBE_USER=${KUBE_USER:-}" "KUBE_PASSWORD=${KUBE_PASSWORD:-}" \
    "KUBE_PROXY_URL=${KUBE_PROXY_URL:-}" "KUBE_CTX_CLUSTER=${KUBE_CTX_CLUSTER:-}" \
    "KUBE_CTX_AUTH_INFO=${KUBE_CTX_AUTH_INFO:-}" "KUBE_CONFIG_PATHS=${KUBE_CONFIG_PATHS:-}"; do
    case $unsupported in
      *=) ;;
      *) fail "${unsupported%%=*} is set, which kubectl would not follow; use KUBE_CONFIG_PATH with KUBE_CTX, or KUBE_HOST with KUBE_TOKEN or KUBE_CLIENT_CERT_DATA/KUBE_CLIENT_KEY_DATA" ;;
    esac
  done
  direct="${KUBE_HOST:-}${KUBE_TOKEN:-}${KUBE_CLIENT_CERT_DATA:-}${KUBE_CLIENT_KEY_DATA:-}${KUBE_CLUSTER_CA_CERT_DATA:-}${KUBE_INSECURE:-}${KUBE_TLS_SERVER_NAME:-}"
  if [ -n "${KUBE_CONFIG_PATH:-}" ]; then
    [ -z "$direct" ] || fail "KUBE_CONFIG_PATH and KUBE_HOST-style variables are both set; set one, so kubectl and the kubernetes provider cannot disagree on the cluster"
    # The provider reads current-context once; kubectl would read it again on every call, and it
    # may have changed in between. Name the context, as credentials 'kubeconfig' must.
    [ -n "${KUBE_CTX:-}" ] || fail "KUBE_CONFIG_PATH is set without KUBE_CTX; name the context, so every kubectl call reaches the cluster the provider reached"
    kubeconfig=$KUBE_CONFIG_PATH
    context=$KUBE_CTX
    return
  fi
  [ -n "${KUBE_HOST:-}" ] || fail "credentials 'environment' needs KUBE_HOST (or KUBE_CONFIG_PATH) in the environment"
  case $KUBE_HOST in
    https://* | http://*) ;;
    *) fail "KUBE_HOST must be an https:// (or http://) URL" ;;
  esac
  case $KUBE_HOST in
    *[!A-Za-z0-9.:/_\[\]-]*) fail "KUBE_HOST has characters a server URL does not" ;;
  esac
  if [ "${KUBE_CLIENT_CERT_DATA:+set}" != "${KUBE_CLIENT_KEY_DATA:+set}" ]; then
    fail "KUBE_CLIENT_CERT_DATA and KUBE_CLIENT_KEY_DATA go together"
  fi
  insecure=false
  if is_true "${KUBE_INSECURE:-}"; then insecure=true; fi
  if [ "$insecure" = true ] && [ -n "${KUBE_CLUSTER_CA_CERT_DATA:-}" ]; then
    fail "KUBE_INSECURE and KUBE_CLUSTER_CA_CERT_DATA are both set; kubectl accepts only one"
  fi

  umask 077
  # Removed on every exit Terraform lets us see. A run killed outright (SIGKILL) leaves its
  # directory behind, readable only by this user: sweep those first. No step lives two hours
  # (the longest wait is control_plane.delete_timeout_seconds, at most one), so older ones are
  # leftovers, never a running step's.
  find "${TMPDIR:-/tmp}" -maxdepth 1 -type d -name 'istio-kubectl.*' -user "$(id -u)" \
    -mmin +120 -exec rm -rf {} + 2>/dev/null || true
  private=$(mktemp -d "${TMPDIR:-/tmp}/istio-kubectl.XXXXXX")
  trap 'rm -rf "$private"' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  kubeconfig=$private/kubeconfig
  context=target

  cluster="
    server: \"$KUBE_HOST\""
  if [ -n "${KUBE_CLUSTER_CA_CERT_DATA:-}" ]; then
    printf '%s\n' "$KUBE_CLUSTER_CA_CERT_DATA" >"$private/ca.crt"
    cluster="$cluster
    certificate-authority: ca.crt"
  fi
  if [ "$insecure" = true ]; then
    cluster="$cluster
    insecure-skip-tls-verify: true"
  fi
  if [ -n "${KUBE_TLS_SERVER_NAME:-}" ]; then
    case $KUBE_TLS_SERVER_NAME in
      *[!A-Za-z0-9.-]*) fail "KUBE_TLS_SERVER_NAME is not a host name" ;;
    esac
    cluster="$cluster
    tls-server-name: $KUBE_TLS_SERVER_NAME"
  fi
  user=""
  if [ -n "${KUBE_TOKEN:-}" ]; then
    printf '%s' "$KUBE_TOKEN" >"$private/token"
    user="$user
    tokenFile: token"
  fi
  if [ -n "${KUBE_CLIENT_CERT_DATA:-}" ]; then
    printf '%s\n' "$KUBE_CLIENT_CERT_DATA" >"$private/client.crt"
    printf '%s\n' "$KUBE_CLIENT_KEY_DATA" >"$private/client.key"
    user="$user
    client-certificate: client.crt
    client-key: client.key"
  fi
  [ -n "$user" ] || user=" {}"
  # File names are bare: kubectl resolves them against the kubeconfig's own directory, so no
  # TMPDIR path (relative, or with odd characters) is ever written into YAML.
  cat >"$kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: target
  cluster:$cluster
users:
- name: target
  user:$user
contexts:
- name: target
  context: {cluster: target, user: target}
current-context: target
KUBECONFIG
}

case $credentials in
  kubeconfig)
    # The kubernetes provider would let these override its kubeconfig; kubectl would not.
    # Synth refuses them too (constructs/workspace_config.py); this guards an apply run from a
    # different shell.
    if [ -n "${KUBE_HOST:-}${KUBE_TOKEN:-}${KUBE_CLUSTER_CA_CERT_DATA:-}${KUBE_CLIENT_CERT_DATA:-}${KUBE_CLIENT_KEY_DATA:-}${KUBE_USER:-}${KUBE_PASSWORD:-}${KUBE_INSECURE:-}${KUBE_TLS_SERVER_NAME:-}${KUBE_PROXY_URL:-}${KUBE_CTX_CLUSTER:-}${KUBE_CTX_AUTH_INFO:-}${KUBE_CONFIG_PATHS:-}" ]; then
      fail "KUBE_* cluster variables are set, which the kubernetes provider would use instead of $kubeconfig; unset them, or use credentials: environment"
    fi
    if [ -z "$kubeconfig" ] || [ -z "$context" ]; then
      fail "credentials 'kubeconfig' needs a kubeconfig path and a context"
    fi
    ;;
  environment) kubeconfig_from_environment ;;
  *) fail "unknown credentials mode '$credentials'" ;;
esac
# The kubernetes provider expands a leading ~ in config_path and in KUBE_CONFIG_PATH; so do we.
case $kubeconfig in
  "~/"*) kubeconfig="$HOME/${kubeconfig#"~/"}" ;;
esac

kube() {
  kubectl --kubeconfig "$kubeconfig" --context "$context" "$@"
}

# Prints the CRD's name if it exists, nothing if not. Call it only as `x=$(crd_name ...)`: set -e
# then stops the script when the lookup fails, so an unreachable cluster is never taken for a
# missing CRD. (Inside an `if` condition, set -e would be off and the failure lost.)
crd_name() {
  kube get customresourcedefinition "$1" --ignore-not-found -o name
}

case $action in
  apply)
    kube apply -f - <"$argument"
    ;;
  wait-established)
    kube wait --for=condition=Established --timeout=120s "customresourcedefinition/$argument"
    ;;
  delete-crd)
    # Deleting the CRD deletes every IstioOperator with it, and one whose operator is gone keeps
    # its finalizer forever: the CRD would hang in Terminating. Stop while one is left instead.
    crd=$(crd_name "$argument")
    if [ -n "$crd" ]; then
      left=$(kube get istiooperators.install.istio.io --all-namespaces \
        -o 'custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name' --no-headers)
      if [ -n "$left" ]; then
        fail "not deleting CRD $argument: IstioOperators remain ($(printf '%s' "$left" | tr -s ' \n' '/ ')); delete them while an operator still runs, then destroy again"
      fi
      kube delete customresourcedefinition "$argument" --ignore-not-found --wait=true --timeout=300s
    fi
    ;;
  delete-istiooperator)
    # ARGUMENT is NAMESPACE/NAME/TIMEOUT_SECONDS. The delete returns only once the operator has
    # removed the control plane and then its finalizer; the operator must still be running.
    namespace=${argument%%/*}
    rest=${argument#*/}
    name=${rest%%/*}
    timeout=${rest#*/}
    if [ -z "$namespace" ] || [ -z "$name" ] || [ -z "$timeout" ]; then
      fail "delete-istiooperator needs NAMESPACE/NAME/TIMEOUT_SECONDS, got '$argument'"
    fi
    # Without the CRD there is no IstioOperator to delete, and kubectl would fail on the unknown
    # resource type (--ignore-not-found covers objects, not types), blocking the destroy.
    crd=$(crd_name istiooperators.install.istio.io)
    if [ -z "$crd" ]; then
      echo "istio-kubectl: CRD istiooperators.install.istio.io is absent; no IstioOperator to delete"
      exit 0
    fi
    kube delete istiooperators.install.istio.io "$name" --namespace "$namespace" \
      --ignore-not-found --wait=true "--timeout=${timeout}s"
    ;;
  refuse-istiooperator)
    # The migration guard of the Sail engine, run before its first step: a Sail control plane
    # beside a running IstioOperator install would render the same istiod, webhooks and
    # ConfigMaps and fight it. ARGUMENT is unused.
    crd=$(crd_name istiooperators.install.istio.io)
    if [ -n "$crd" ]; then
      left=$(kube get istiooperators.install.istio.io --all-namespaces \
        -o 'custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name' --no-headers)
      if [ -n "$left" ]; then
        fail "not installing the Sail Operator: IstioOperators remain ($(printf '%s' "$left" | tr -s ' \n' '/ ')), and two control planes would fight. Remove the old one first: set istio_version back to 1.23.6 and apply (the operator returns), then remove the control plane with 'terraform -chdir=cdktf.out/stacks/<workspace> destroy -target=terraform_data.control_plane_removal', which waits until istiod is gone; then set the Sail version and apply again, and restart the workloads of injected namespaces (README: Moving from 1.23.6)"
      fi
    fi
    ;;
  apply-server-side)
    # Server-side: the Istio CRDs are larger than the 256 KiB last-applied annotation of a
    # client-side apply. Forced: the stack owns these objects, including fields an earlier
    # install (Istio 1.23's own CRDs) or a hand edit set.
    kube apply --server-side --field-manager=istio-cdktf --force-conflicts -f - <"$argument"
    ;;
  apply-crds)
    # ARGUMENT is a file of CRDs: applied as above, then waited for until every one is
    # Established, so nothing later meets an unknown kind.
    kube apply --server-side --field-manager=istio-cdktf --force-conflicts -f - <"$argument"
    kube wait --for=condition=Established --timeout=120s -f - <"$argument"
    ;;
  delete-istio)
    # ARGUMENT is NAME/TIMEOUT_SECONDS of a cluster-scoped sailoperator.io Istio. The Istio has
    # no finalizer, so a plain delete returns before istiod is uninstalled; the foreground
    # cascade makes it wait for its IstioRevision, whose finalizer uninstalls istiod while the
    # operator still runs. The wait afterwards covers a revision the cascade did not reach.
    name=${argument%%/*}
    timeout=${argument#*/}
    if [ -z "$name" ] || [ -z "$timeout" ] || [ "$name" = "$argument" ]; then
      fail "delete-istio needs NAME/TIMEOUT_SECONDS, got '$argument'"
    fi
    crd=$(crd_name istios.sailoperator.io)
    if [ -z "$crd" ]; then
      echo "istio-kubectl: CRD istios.sailoperator.io is absent; no Istio to delete"
      exit 0
    fi
    # The IstioRevisionTag `default` the stack adds for a differently named Istio goes first.
    tag=$(kube get istiorevisiontags.sailoperator.io default --ignore-not-found \
      -o 'jsonpath={.spec.targetRef.name}')
    if [ -n "$tag" ] && [ "$tag" = "$name" ]; then
      kube delete istiorevisiontags.sailoperator.io default --ignore-not-found --wait=true \
        "--timeout=${timeout}s"
    fi
    kube delete istios.sailoperator.io "$name" --ignore-not-found --cascade=foreground \
      --wait=true "--timeout=${timeout}s"
    # An InPlace Istio's revision has the Istio's name (the stack never sets RevisionBased).
    revision=$(kube get istiorevisions.sailoperator.io "$name" --ignore-not-found -o name)
    if [ -n "$revision" ]; then
      kube wait --for=delete "$revision" "--timeout=${timeout}s"
    fi
    ;;
  delete-crds)
    # ARGUMENT is CRD names separated by spaces. Deleting a CRD deletes every resource of its
    # kind: Istio's traffic rules, or a Sail resource whose finalizer would then hang with no
    # operator left. Stop while any remain; delete the CRDs that exist only when none do.
    set -f # the names are split on spaces, never globbed
    # shellcheck disable=SC2086
    existing=$(kube get customresourcedefinition $argument --ignore-not-found -o name)
    set +f
    if [ -z "$existing" ]; then
      echo "istio-kubectl: none of these CRDs exist; nothing to delete"
      exit 0
    fi
    kinds=$(printf '%s\n' "$existing" | sed 's|^[^/]*/||' | paste -s -d , -)
    left=$(kube get "$kinds" --all-namespaces -o name)
    if [ -n "$left" ]; then
      fail "not deleting the CRDs: resources of their kinds remain ($(printf '%s' "$left" | head -n 10 | paste -s -d ' ' -)); delete or move them, then destroy again"
    fi
    set -f
    # shellcheck disable=SC2086
    kube delete customresourcedefinition $(printf '%s\n' "$existing" | sed 's|^[^/]*/||') \
      --ignore-not-found --wait=true --timeout=300s
    set +f
    ;;
  *)
    fail "unknown action '$action'"
    ;;
esac
