"""Page blueprints: parse input, call a service, render. Decisions live in `vault.policy`."""
