#!/bin/sh
# One-shot setup of the dev-mode Vault started by deploy/docker-compose.yml
# (service `vault-init`, run in the hashicorp/vault image). Safe to run again.
#
# It enables AppRole, installs deploy/vault/invite-service-policy.hcl, creates
# the role `invite-service` with the role id and secret id the workers are given
# (INVITE_VAULT_ROLE_ID / INVITE_VAULT_SECRET_ID), and writes the service's
# secret to KV v2 at secret/invite-service. Dev mode only: a real Vault gets the
# same commands from an operator, with a generated secret id (see docs/RUNBOOK.md).
#
# By hand, against any Vault (VAULT_ADDR and an admin VAULT_TOKEN exported):
#   INVITE_VAULT_ROLE_ID=... INVITE_VAULT_SECRET_ID=... INVITE_JWT_SECRET=... \
#   INVITE_INTEGRATION_SERVICE_TOKEN=... POLICY=deploy/vault/invite-service-policy.hcl \
#   sh deploy/vault/init.sh
set -eu

: "${VAULT_ADDR:?VAULT_ADDR is required}"
: "${VAULT_TOKEN:?VAULT_TOKEN (an admin token) is required}"
: "${INVITE_VAULT_ROLE_ID:?}" "${INVITE_VAULT_SECRET_ID:?}"
: "${INVITE_JWT_SECRET:?}" "${INVITE_INTEGRATION_SERVICE_TOKEN:?}"
POLICY="${POLICY:-/vault/init/invite-service-policy.hcl}"

if ! vault auth list | grep -q '^approle/'; then
    vault auth enable approle
fi
vault policy write invite-service "$POLICY"
# Tokens live 1 h and are renewed by the service (adapters/vault.py); after
# 24 h the service logs in again with its secret id.
vault write auth/approle/role/invite-service \
    token_policies=invite-service token_ttl=1h token_max_ttl=24h secret_id_ttl=0
vault write auth/approle/role/invite-service/role-id role_id="$INVITE_VAULT_ROLE_ID"
# A custom secret id can be registered once; on a re-run it already logs in.
if ! vault write -field=token_accessor auth/approle/login \
        role_id="$INVITE_VAULT_ROLE_ID" secret_id="$INVITE_VAULT_SECRET_ID" >/dev/null 2>&1; then
    vault write -field=secret_id_accessor auth/approle/role/invite-service/custom-secret-id \
        secret_id="$INVITE_VAULT_SECRET_ID" >/dev/null
fi

set -- jwt_secret="$INVITE_JWT_SECRET" integration_service_token="$INVITE_INTEGRATION_SERVICE_TOKEN"
if [ -n "${INVITE_TELEGRAM_API_ID:-}" ] && [ -n "${INVITE_TELEGRAM_API_HASH:-}" ]; then
    set -- "$@" telegram_api_id="$INVITE_TELEGRAM_API_ID" telegram_api_hash="$INVITE_TELEGRAM_API_HASH"
fi
vault kv put -mount=secret invite-service "$@" >/dev/null
echo "vault-init: AppRole invite-service and secret/invite-service are ready"
