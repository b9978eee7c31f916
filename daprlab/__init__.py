"""Tooling for the Dapr actor lab: runtime provisioning, the local runner and the test harness."""
