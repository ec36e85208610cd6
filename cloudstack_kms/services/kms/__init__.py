"""The KMS: HSM profiles, KMS keys and their KEK versions, and envelope encryption of DEKs."""
