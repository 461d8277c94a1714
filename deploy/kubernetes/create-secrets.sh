#!/usr/bin/env sh
# Creates (or keeps) the Secrets the manifests reference. Nothing secret is ever committed: the
# values are generated here, on your machine, and sent straight to the cluster.
#
#   sh deploy/kubernetes/create-secrets.sh            # namespace meshlimit
#   NAMESPACE=other sh deploy/kubernetes/create-secrets.sh
#
# Existing Secrets are left untouched (re-running never rotates a password under running pods);
# to rotate, see deploy/README.md, "Rotating the Redis password".
#
# Secrets:
#   redis-auth   key `password`: Redis `requirepass`/`masterauth` (redis-cluster StatefulSet,
#                bootstrap Job) and meshlimit's REDIS_AUTH.
#   user-service-signing-key   key `signing-key.pem`: the sample user service's ES256 (P-256)
#                private key, PKCS#8 PEM (USER_SERVICE_SIGNING_KEY_FILE); only its public half is
#                ever published (the service's JWKS).
set -eu
ns="${NAMESPACE:-meshlimit}"

if kubectl -n "$ns" get secret redis-auth >/dev/null 2>&1; then
  echo "secret/redis-auth exists in $ns; keeping it"
else
  # 32 random bytes as hex: no quotes or spaces that could break redis.conf.
  password="$(openssl rand -hex 32)"
  kubectl -n "$ns" create secret generic redis-auth --from-literal=password="$password"
  unset password
fi

if kubectl -n "$ns" get secret user-service-signing-key >/dev/null 2>&1; then
  echo "secret/user-service-signing-key exists in $ns; keeping it"
else
  keyfile="$(mktemp)"
  trap 'rm -f "$keyfile"' EXIT
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keyfile"
  kubectl -n "$ns" create secret generic user-service-signing-key --from-file=signing-key.pem="$keyfile"
  rm -f "$keyfile"
fi
