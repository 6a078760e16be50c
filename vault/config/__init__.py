"""Configuration: the `VAULT_*` settings (settings.py) and the sections of the policy file."""
