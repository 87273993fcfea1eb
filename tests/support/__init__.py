"""Helpers the test tiers share (media writers, the timing corpus, input specs, CLI overrides); not tests."""
