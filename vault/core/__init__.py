"""The vocabulary every layer shares and none depends on: actions, audit events, context, events, errors."""
