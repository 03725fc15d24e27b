"""Shared pieces of the personas: configuration, request groups and checks, test users, upload helpers.

Nothing here imports Locust or gevent, so the unit tests import it directly.
"""
