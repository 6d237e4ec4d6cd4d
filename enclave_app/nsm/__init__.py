"""The Nitro Security Module: its interface and a simulator for development and tests."""
