# Vault policy of the Invite Service: read its one KV v2 secret, nothing else.
#
#   vault policy write invite-service deploy/vault/invite-service-policy.hcl
#   vault write auth/approle/role/invite-service token_policies=invite-service ...
#
# KV v2 keeps values under <mount>/data/<path>, so this is the API path of the
# secret `secret/invite-service` (INVITE_VAULT_MOUNT / INVITE_VAULT_SECRET_PATH).
# Only "read": the service reads the latest version at startup and never writes,
# lists, deletes or reads metadata/older versions (no secret/metadata/* grant).
path "secret/data/invite-service" {
  capabilities = ["read"]
}

# Nothing else is granted here on purpose. The token keeps itself alive with
# auth/token/renew-self and reads its TTL with auth/token/lookup-self; both are
# granted by Vault's built-in `default` policy, which AppRole attaches to every
# token unless the role sets token_no_default_policy=true (ours does not).
# Repeating them here would only widen this policy if `default` is ever trimmed.
