"""The console tests use the API tests' seeded store (one user per role) and app."""

from tests.api.conftest import app, client, seeded_var, store, users  # noqa: F401
