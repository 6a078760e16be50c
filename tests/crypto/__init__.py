"""Tests of the crypto package: streaming AEAD, Tink interoperability, keyring."""
