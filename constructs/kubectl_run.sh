# istio-kubectl: the one program every provisioner of the stack runs, as
#   sh kubectl_run.sh CREDENTIALS KUBECONFIG CONTEXT ACTION ARGUMENT
# Terraform passes each value as its own argv entry and no shell ever parses them: they are only
# expanded inside double quotes here. Manifest bytes reach kubectl's stdin straight from the file,
# so a `$(...)` in a manifest arrives literally.
set -eu

if [ "$#" -ne 5 ]; then
  echo "istio-kubectl: expected 5 arguments, got $#" >&2
  exit 2
fi
credentials=$1 kubeconfig=$2 context=$3 action=$4 argument=$5

if ! command -v kubectl >/dev/null 2>&1; then
  # printf is a shell builtin: this message still prints on a runner with a bare PATH.
  printf '%s\n' >&2 \
    "istio-kubectl: kubectl was not found on PATH, so nothing was applied." \
    "The CRD and the IstioOperator are applied with kubectl by the machine running Terraform." \
    "Install kubectl there (Terraform Cloud remote runs have none: use an agent pool whose" \
    "image has kubectl, or the workspace's local execution mode), then run the apply again."
  exit 127
fi

case $credentials in
  kubeconfig)
    # The kubernetes provider would let these override its kubeconfig; kubectl would not.
    # Synth refuses them too; this guards an apply run in a different shell.
    if [ -n "${KUBE_HOST:-}${KUBE_TOKEN:-}${KUBE_CLUSTER_CA_CERT_DATA:-}${KUBE_CLIENT_CERT_DATA:-}${KUBE_CLIENT_KEY_DATA:-}${KUBE_USER:-}${KUBE_PASSWORD:-}${KUBE_INSECURE:-}${KUBE_TLS_SERVER_NAME:-}${KUBE_PROXY_URL:-}" ]; then
      echo "istio-kubectl: KUBE_* cluster variables are set, which the kubernetes provider would use instead of $kubeconfig; unset them, or use credentials: environment" >&2
      exit 2
    fi
    # The kubernetes provider expands a leading ~ in config_path; do the same.
    case $kubeconfig in
      "~/"*) kubeconfig="$HOME/${kubeconfig#"~/"}" ;;
    esac
    ;;
  environment)
    # Terraform Cloud: the same KUBE_* variables the kubernetes provider reads. kubectl gets a
    # private kubeconfig built from them, removed when this step ends, however it ends.
    if [ -n "${KUBE_CONFIG_PATH:-}" ] && [ -n "${KUBE_HOST:-}" ]; then
      echo "istio-kubectl: both KUBE_CONFIG_PATH and KUBE_HOST are set; set one, so kubectl and the kubernetes provider cannot disagree on the cluster" >&2
      exit 2
    fi
    if [ -n "${KUBE_CONFIG_PATH:-}" ]; then
      kubeconfig=$KUBE_CONFIG_PATH
      context=${KUBE_CTX:-}
    else
      if [ -z "${KUBE_HOST:-}" ]; then
        echo "istio-kubectl: credentials 'environment' needs KUBE_HOST (or KUBE_CONFIG_PATH) in the environment" >&2
        exit 2
      fi
      case $KUBE_HOST in
        *[!A-Za-z0-9.:/_\[\]-]*)
          echo "istio-kubectl: KUBE_HOST is not a plain https URL" >&2
          exit 2
          ;;
      esac
      umask 077
      private=$(mktemp -d "${TMPDIR:-/tmp}/istio-kubectl.XXXXXX")
      trap 'rm -rf "$private"' EXIT
      trap 'exit 130' INT TERM
      kubeconfig=$private/kubeconfig
      context=target
      # Secrets go to files with printf, a shell builtin: they never appear in a process's argv.
      user=""
      if [ -n "${KUBE_TOKEN:-}" ]; then
        printf '%s' "$KUBE_TOKEN" >"$private/token"
        user="$user
    tokenFile: $private/token"
      fi
      if [ -n "${KUBE_CLIENT_CERT_DATA:-}" ]; then
        printf '%s\n' "$KUBE_CLIENT_CERT_DATA" >"$private/client.crt"
        printf '%s\n' "${KUBE_CLIENT_KEY_DATA:-}" >"$private/client.key"
        user="$user
    client-certificate: $private/client.crt
    client-key: $private/client.key"
      fi
      cluster=""
      if [ -n "${KUBE_CLUSTER_CA_CERT_DATA:-}" ]; then
        printf '%s\n' "$KUBE_CLUSTER_CA_CERT_DATA" >"$private/ca.crt"
        cluster="
    certificate-authority: $private/ca.crt"
      fi
      case ${KUBE_INSECURE:-false} in
        true | 1) cluster="$cluster
    insecure-skip-tls-verify: true" ;;
      esac
      if [ -n "${KUBE_TLS_SERVER_NAME:-}" ]; then
        case $KUBE_TLS_SERVER_NAME in
          *[!A-Za-z0-9.-]*)
            echo "istio-kubectl: KUBE_TLS_SERVER_NAME is not a host name" >&2
            exit 2
            ;;
        esac
        cluster="$cluster
    tls-server-name: $KUBE_TLS_SERVER_NAME"
      fi
      [ -n "$user" ] || user=" {}"
      cat >"$kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: target
  cluster:
    server: "$KUBE_HOST"$cluster
users:
- name: target
  user:$user
contexts:
- name: target
  context: {cluster: target, user: target}
current-context: target
KUBECONFIG
    fi
    ;;
  *)
    echo "istio-kubectl: unknown credentials mode '$credentials'" >&2
    exit 2
    ;;
esac

kube() {
  if [ -n "$context" ]; then
    kubectl --kubeconfig "$kubeconfig" --context "$context" "$@"
  else
    kubectl --kubeconfig "$kubeconfig" "$@"
  fi
}

case $action in
  apply)
    kube apply -f - <"$argument"
    ;;
  wait-established)
    kube wait --for=condition=Established --timeout=120s "customresourcedefinition/$argument"
    ;;
  delete-crd)
    kube delete customresourcedefinition "$argument" --ignore-not-found --wait=true --timeout=300s
    ;;
  delete-istiooperator)
    # ARGUMENT is NAMESPACE/NAME/TIMEOUT_SECONDS. The delete returns only once the operator has
    # removed the control plane and then its finalizer; the operator must still be running.
    namespace=${argument%%/*}
    rest=${argument#*/}
    name=${rest%%/*}
    timeout=${rest#*/}
    kube delete istiooperators.install.istio.io "$name" --namespace "$namespace" \
      --ignore-not-found --wait=true "--timeout=${timeout}s"
    ;;
  *)
    echo "istio-kubectl: unknown action '$action'" >&2
    exit 2
    ;;
esac
