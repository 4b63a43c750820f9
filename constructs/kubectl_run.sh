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

# Which kubectl to run: constructs/kubectl_provision.sh (an asset of the stack, named by the
# provisioner's environment with the workspace's kubectl settings) prints its path: kubectl from
# PATH, or the pinned download once its SHA-256 matched. It explains its own failures.
if [ -n "${ISTIO_KUBECTL_PROVISION_SCRIPT:-}" ]; then
  # Its status passes through, but 1 becomes 2: set -e ends it with 1 on an ordinary failure
  # (mkdir, mktemp, mv), and to the diff actions 1 means drift, not "could not check".
  kubectl_bin=$(/bin/sh "$ISTIO_KUBECTL_PROVISION_SCRIPT") || {
    status=$?
    [ "$status" -ne 1 ] || status=2
    exit "$status"
  }
else
  # Run by hand, outside a stack: kubectl from PATH.
  kubectl_bin=$(command -v kubectl) ||
    fail "kubectl was not found on PATH, so nothing was applied or deleted"
fi

# Go's strconv.ParseBool, as the kubernetes provider reads KUBE_INSECURE.
is_true() {
  case $1 in
    1 | t | T | TRUE | true | True) return 0 ;;
    "" | 0 | f | F | FALSE | false | False) return 1 ;;
    *) fail "KUBE_INSECURE='$1' is not a boolean" ;;
  esac
}

# Prints the names, among the KUBE_* variables the kubernetes provider reads, of those it would
# act on. Each is tested by itself, so a value ending in '=' (base64 padding) still counts; a
# KUBE_INSECURE that parses as false changes nothing in the provider, so it does not count.
set_variables() {
  for name in "$@"; do
    case $name in
      KUBE_HOST) value=${KUBE_HOST:-} ;;
      KUBE_TOKEN) value=${KUBE_TOKEN:-} ;;
      KUBE_CLUSTER_CA_CERT_DATA) value=${KUBE_CLUSTER_CA_CERT_DATA:-} ;;
      KUBE_CLIENT_CERT_DATA) value=${KUBE_CLIENT_CERT_DATA:-} ;;
      KUBE_CLIENT_KEY_DATA) value=${KUBE_CLIENT_KEY_DATA:-} ;;
      KUBE_USER) value=${KUBE_USER:-} ;;
      KUBE_PASSWORD) value=${KUBE_PASSWORD:-} ;;
      KUBE_INSECURE) value= && if is_true "${KUBE_INSECURE:-}"; then value=true; fi ;;
      KUBE_TLS_SERVER_NAME) value=${KUBE_TLS_SERVER_NAME:-} ;;
      KUBE_PROXY_URL) value=${KUBE_PROXY_URL:-} ;;
      KUBE_CTX_CLUSTER) value=${KUBE_CTX_CLUSTER:-} ;;
      KUBE_CTX_AUTH_INFO) value=${KUBE_CTX_AUTH_INFO:-} ;;
      KUBE_CONFIG_PATHS) value=${KUBE_CONFIG_PATHS:-} ;;
      *) fail "internal: unknown variable $name" ;;
    esac
    if [ -n "$value" ]; then printf '%s ' "$name"; fi
  done
  value=
}

# The bytes of $1, base64 on one line. printf is a builtin, so the value reaches base64 through a
# pipe, never through an argv.
base64_line() {
  encoded=$(printf '%s' "$1" | base64 | tr -d '\n')
  [ -n "$encoded" ] || fail "could not base64-encode a KUBE_* value (is base64 on PATH?)"
  printf '%s' "$encoded"
}

# The whole kubeconfig, built in memory from the KUBE_* variables the kubernetes provider reads,
# so both aim at the same cluster. It is never written to a file: `kube` hands it to each kubectl
# on a file descriptor. Anything set that would not be carried over to kubectl is refused rather
# than dropped.
kubeconfig_from_environment() {
  unsupported=$(set_variables KUBE_USER KUBE_PASSWORD KUBE_PROXY_URL KUBE_CTX_CLUSTER \
    KUBE_CTX_AUTH_INFO KUBE_CONFIG_PATHS)
  if [ -n "$unsupported" ]; then
    fail "set in the environment: ${unsupported% }, which kubectl would not follow; use KUBE_CONFIG_PATH with KUBE_CTX, or KUBE_HOST with KUBE_TOKEN or KUBE_CLIENT_CERT_DATA/KUBE_CLIENT_KEY_DATA"
  fi
  direct=$(set_variables KUBE_HOST KUBE_TOKEN KUBE_CLIENT_CERT_DATA KUBE_CLIENT_KEY_DATA \
    KUBE_CLUSTER_CA_CERT_DATA KUBE_INSECURE KUBE_TLS_SERVER_NAME)
  if [ -n "${KUBE_CONFIG_PATH:-}" ]; then
    [ -z "$direct" ] || fail "KUBE_CONFIG_PATH and KUBE_HOST-style variables (${direct% }) are both set; set one, so kubectl and the kubernetes provider cannot disagree on the cluster"
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

  # Every value goes into the YAML either checked against a character set that needs no quoting
  # or base64-encoded, so none can change its structure. The provider passes the PEM variables to
  # client-go as bytes; kubeconfig's *-data fields are those bytes, base64-encoded.
  cluster="
    server: \"$KUBE_HOST\""
  if [ -n "${KUBE_CLUSTER_CA_CERT_DATA:-}" ]; then
    cluster="$cluster
    certificate-authority-data: $(base64_line "$KUBE_CLUSTER_CA_CERT_DATA")"
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
    # RFC 6750's b64token: what a bearer token may contain, none of it special in YAML quotes.
    case $KUBE_TOKEN in
      *[!A-Za-z0-9._~+/=-]*) fail "KUBE_TOKEN has characters a bearer token does not" ;;
    esac
    user="$user
    token: \"$KUBE_TOKEN\""
  fi
  if [ -n "${KUBE_CLIENT_CERT_DATA:-}" ]; then
    user="$user
    client-certificate-data: $(base64_line "$KUBE_CLIENT_CERT_DATA")
    client-key-data: $(base64_line "$KUBE_CLIENT_KEY_DATA")"
  fi
  [ -n "$user" ] || user=" {}"
  context=target
  inline="apiVersion: v1
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
current-context: target"
}

# A whole kubeconfig when it was built from the environment; empty when kubectl reads a file.
inline=""
case $credentials in
  kubeconfig)
    # The kubernetes provider would let these override its kubeconfig; kubectl would not.
    # Synth refuses them too (constructs/workspace_config.py); this guards an apply run from a
    # different shell.
    overriding=$(set_variables KUBE_HOST KUBE_TOKEN KUBE_CLUSTER_CA_CERT_DATA \
      KUBE_CLIENT_CERT_DATA KUBE_CLIENT_KEY_DATA KUBE_USER KUBE_PASSWORD KUBE_INSECURE \
      KUBE_TLS_SERVER_NAME KUBE_PROXY_URL KUBE_CTX_CLUSTER KUBE_CTX_AUTH_INFO KUBE_CONFIG_PATHS)
    if [ -n "$overriding" ]; then
      fail "KUBE_* cluster variables are set (${overriding% }), which the kubernetes provider would use instead of $kubeconfig; unset them, or use credentials: environment"
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
  "~/"*)
    [ -n "${HOME:-}" ] || fail "the kubeconfig path '$kubeconfig' starts with ~/ but HOME is not set; set HOME, or give an absolute path"
    kubeconfig="$HOME/${kubeconfig#"~/"}"
    ;;
esac

# kubectl aimed at the target: `kube ARGS...` runs it and returns; `kube_last ARGS...` replaces
# this shell with it (exec), for the last call of an action. Terraform stops a step by killing
# its process only (SIGKILL, no trap runs, children are left running): as the step's process
# itself, the long call (apply, wait, delete) goes with it. A built kubeconfig reaches kubectl on
# fd 3 through a here-document, which dash feeds through a pipe (bash may use a temporary file it
# unlinks before kubectl starts), so no step writes a secret under any name. kubectl reads its
# kubeconfig once per run; a wrapper that reads it first (Google Cloud SDK's kubectl dispatcher)
# would leave the real kubectl an empty one, and the call fails naming the missing context.
kube() {
  run_kubectl "" "$@"
}
kube_last() {
  run_kubectl exec "$@"
}
run_kubectl() {
  how=$1
  shift
  if [ -n "$inline" ]; then
    $how "$kubectl_bin" --kubeconfig /dev/fd/3 --context "$context" "$@" 3<<KUBECONFIG
$inline
KUBECONFIG
  else
    $how "$kubectl_bin" --kubeconfig "$kubeconfig" --context "$context" "$@"
  fi
}

# Prints the CRD's name if it exists, nothing if not. Call it only as `x=$(crd_name ...)`: set -e
# then stops the script when the lookup fails, so an unreachable cluster is never taken for a
# missing CRD. (Inside an `if` condition, set -e would be off and the failure lost.)
# Lookups run before an action's last call, as children of this shell; --request-timeout bounds
# how long one can outlive a step that was killed meanwhile.
crd_name() {
  kube get customresourcedefinition "$1" --ignore-not-found -o name --request-timeout=60s
}

# Every IstioOperator as NAMESPACE/NAME, separated by spaces; call it as `x=$(...)` too.
istiooperators_left() {
  found=$(kube get istiooperators.install.istio.io --all-namespaces \
    -o 'custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name' --no-headers \
    --request-timeout=60s)
  printf '%s' "$found" | tr -s ' \n' '/ '
}

case $action in
  apply)
    kube_last apply -f - <"$argument"
    ;;
  wait-established)
    kube_last wait --for=condition=Established --timeout=120s "customresourcedefinition/$argument"
    ;;
  delete-crd)
    # Deleting the CRD deletes every IstioOperator with it, and one whose operator is gone keeps
    # its finalizer forever: the CRD would hang in Terminating. Stop while one is left instead.
    crd=$(crd_name "$argument")
    if [ -n "$crd" ]; then
      left=$(istiooperators_left)
      if [ -n "$left" ]; then
        fail "not deleting CRD $argument: IstioOperators remain ($left); delete them while an operator still runs, then destroy again"
      fi
      kube_last delete customresourcedefinition "$argument" --ignore-not-found --wait=true --timeout=300s
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
    kube_last delete istiooperators.install.istio.io "$name" --namespace "$namespace" \
      --ignore-not-found --wait=true "--timeout=${timeout}s"
    ;;
  diff | diff-server-side)
    # The drift check (constructs/drift.py), not a provisioner: what applying ARGUMENT would
    # change, as kubectl computes it with dry-run requests only; diff-server-side for what
    # apply-server-side applies, with the same field manager. kubectl diff exits 0
    # when nothing would, 1 when something would, above 1 when it could not tell; so does this
    # step (2). KUBECTL_EXTERNAL_DIFF is dropped so those codes and the output are `diff -u -N`'s.
    unset KUBECTL_EXTERNAL_DIFF
    status=0
    if [ "$action" = diff ]; then
      kube diff -f - <"$argument" || status=$?
    else
      kube diff --server-side --field-manager=istio-cdktf --force-conflicts -f - <"$argument" ||
        status=$?
    fi
    case $status in
      0 | 1) exit "$status" ;;
      *) exit 2 ;;
    esac
    ;;
  refuse-istiooperator)
    # The migration guard of the Sail engine, run before its first step: a Sail control plane
    # beside a running IstioOperator install would render the same istiod, webhooks and
    # ConfigMaps and fight it. ARGUMENT is unused.
    crd=$(crd_name istiooperators.install.istio.io)
    if [ -n "$crd" ]; then
      left=$(istiooperators_left)
      if [ -n "$left" ]; then
        fail "not installing the Sail Operator: IstioOperators remain ($left), and two control planes would fight. Remove the old one first: set istio_version back to 1.23.6 and apply (the operator returns), then remove the control plane with 'terraform -chdir=cdktf.out/stacks/<workspace> destroy -target=terraform_data.control_plane_removal', which waits until istiod is gone; then set the Sail version and apply again, and restart the workloads of injected namespaces (README: Moving from 1.23.6)"
      fi
    fi
    ;;
  apply-server-side)
    # Server-side: the Istio CRDs are larger than the 256 KiB last-applied annotation of a
    # client-side apply. Forced: the stack owns these objects, including fields an earlier
    # install (Istio 1.23's own CRDs) or a hand edit set.
    kube_last apply --server-side --field-manager=istio-cdktf --force-conflicts -f - <"$argument"
    ;;
  wait-crds-established)
    # ARGUMENT is the file of CRDs apply-server-side applied in the step before: wait until
    # every one is Established, so nothing later meets an unknown kind. A step of its own, so
    # that each of the two long calls is its step's last (exec'd) call.
    kube_last wait --for=condition=Established --timeout=120s -f - <"$argument"
    ;;
  delete-istio)
    # ARGUMENT is NAME/TIMEOUT_SECONDS of a cluster-scoped sailoperator.io Istio. The Istio has
    # no finalizer, so a plain delete returns before istiod is uninstalled. The foreground
    # cascade keeps the Istio until its IstioRevisions (blockOwnerDeletion dependents) are gone,
    # and their finalizer uninstalls istiod while the operator still runs; so waiting for the
    # Istio's deletion covers a revision of any name. The deletes only ask (--wait=false) and
    # return at once; the one long call is the wait, this step's last, so a cancelled step
    # leaves no kubectl deleting or waiting behind.
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
    # The IstioRevisionTag `default` the stack adds for a differently named Istio is asked to go
    # first, and waited for with the rest.
    tag=$(kube get istiorevisiontags.sailoperator.io default --ignore-not-found \
      -o 'jsonpath={.spec.targetRef.name}' --request-timeout=60s)
    if [ -n "$tag" ] && [ "$tag" = "$name" ]; then
      kube delete istiorevisiontags.sailoperator.io default --ignore-not-found --wait=false \
        --request-timeout=60s
      waited_tag=istiorevisiontags.sailoperator.io/default
    else
      waited_tag=""
    fi
    kube delete istios.sailoperator.io "$name" --ignore-not-found --cascade=foreground \
      --wait=false --request-timeout=60s
    # --for=delete takes an object that is already gone (or never existed) as done. The
    # revision by name (an InPlace Istio's revision has the Istio's name) also covers one left
    # by an Istio that an earlier, cancelled delete already removed.
    kube_last wait --for=delete ${waited_tag:+"$waited_tag"} "istios.sailoperator.io/$name" \
      "istiorevisions.sailoperator.io/$name" "--timeout=${timeout}s"
    ;;
  delete-crds)
    # ARGUMENT is CRD names separated by spaces. Deleting a CRD deletes every resource of its
    # kind: Istio's traffic rules, or a Sail resource whose finalizer would then hang with no
    # operator left. Stop while any remain; delete the CRDs that exist only when none do.
    set -f # the names are split on spaces, never globbed
    # shellcheck disable=SC2086
    existing=$(kube get customresourcedefinition $argument --ignore-not-found -o name \
      --request-timeout=60s)
    set +f
    if [ -z "$existing" ]; then
      echo "istio-kubectl: none of these CRDs exist; nothing to delete"
      exit 0
    fi
    kinds=$(printf '%s\n' "$existing" | sed 's|^[^/]*/||' | paste -s -d , -)
    left=$(kube get "$kinds" --all-namespaces -o name --request-timeout=60s)
    if [ -n "$left" ]; then
      fail "not deleting the CRDs: resources of their kinds remain ($(printf '%s' "$left" | head -n 10 | paste -s -d ' ' -)); delete or move them, then destroy again"
    fi
    set -f
    # shellcheck disable=SC2086
    kube_last delete customresourcedefinition $(printf '%s\n' "$existing" | sed 's|^[^/]*/||') \
      --ignore-not-found --wait=true --timeout=300s
    ;;
  *)
    fail "unknown action '$action'"
    ;;
esac
