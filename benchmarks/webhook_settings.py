"""Benchmark-only settings: production settings, served with benchmarks.webhook_urls."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.webhook_urls"
