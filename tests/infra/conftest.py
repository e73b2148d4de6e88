"""Infra tests: template.yaml, Dockerfiles, requirements and sample events, checked without AWS."""


def pytest_configure(config):
    config.addinivalue_line("markers", "network: needs the package index (skipped when it cannot be reached)")
