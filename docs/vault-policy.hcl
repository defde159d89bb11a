# The Vault (or OpenBao) policy Edgeward's token needs, for the default mount `secret` (KV v2)
# and prefix `edgeward`. Change both paths if you pass --vault-mount or --vault-prefix.
# The test suite runs the whole scope table with a token that holds only this policy.

# Values: read, create, update (check-and-set), and the wrapped reads of `secrets wrap`.
path "secret/data/edgeward/*" {
  capabilities = ["create", "read", "update"]
}

# Metadata: listing names, the current version (update, rm), who wrote a secret last
# (custom metadata), and deleting a secret with all its versions.
path "secret/metadata/edgeward/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Wrapping a value Edgeward holds already (a user secret, opened and sealed again).
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
