"""KMS providers: one interface (:mod:`.base`), providers as siblings (:mod:`.database`, :mod:`.pkcs11`)."""
