"""docs/permissions.md is rendered from the permission table in code; they must not drift."""

from pathlib import Path

from safecity.governance.users import PERMISSIONS, ROLES, Permission, permissions_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_docs_match_the_code():
    assert DOC.read_text() == permissions_markdown(), "run: safecity user permissions > docs/permissions.md"


def test_every_permission_has_roles_and_the_separation_of_duties_holds():
    assert set(PERMISSIONS) == set(Permission)
    assert all(roles <= set(ROLES) and roles for roles in PERMISSIONS.values())
    assert PERMISSIONS[Permission.AUDIT_READ] == {"auditor"}
    assert PERMISSIONS[Permission.WATCHLISTS_APPROVE] == {"supervisor"}
    assert "admin" not in PERMISSIONS[Permission.EVENTS_VIEW] | PERMISSIONS[Permission.MEDIA_UNREDACTED]
