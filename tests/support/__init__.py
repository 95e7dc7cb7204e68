"""Helpers shared by the test suites (brokers and other services to test against)."""
