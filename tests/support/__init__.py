"""Shared test support: factories for wire documents and fixtures for real services.

Import the module you need (``from tests.support.reviews import review``); this package imports nothing
itself, so using one module never pulls in the dependencies of another.
"""
