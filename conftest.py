"""Shared pytest set-up: the hypothesis profile (see refcnn/testing/profiles.py)."""

from refcnn.testing.profiles import register_profiles

register_profiles()
