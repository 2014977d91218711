"""Unit tests of the SDK against a mocked transport (``responses``): fast, no network, no platform."""
