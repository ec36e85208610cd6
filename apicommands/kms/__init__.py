"""KMS commands: HSM profiles and KMS keys."""
