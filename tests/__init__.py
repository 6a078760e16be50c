"""Test suite of vault."""
