"""Covering paths: every data-path action (both modes) and every device function is reached."""

from __future__ import annotations

from smcd_check.conformance.catalogue.paths import CASES, _keys_of_run, load
from smcd_check.spec import datapath


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() and i else c.lower()
                   for i, c in enumerate(name))


def test_the_stored_paths_cover_every_datapath_action_in_both_modes() -> None:
    keys = set(load())
    for mode in ("copy", "merged"):
        for action in datapath.ACTION_TYPES:
            assert f"{mode}.{_kebab(action.__name__)}" in keys, (mode, action.__name__)
    for fn in ("register", "unregister", "attach", "detach", "move"):
        assert any(k.startswith(f"device.dev-{fn}") and k.endswith(".ok") for k in keys), fn
    assert any(k.endswith(".unknown-token") for k in keys)


def test_every_stored_path_still_reaches_its_key_on_the_spec() -> None:
    """If the spec changes so that a path no longer reaches its action, regenerate the file
    (python -m smcd_check.conformance.catalogue.paths)."""
    for key, steps in load().items():
        assert key in _keys_of_run(steps), key


def test_each_path_is_a_catalogue_case() -> None:
    assert {c.id for c in CASES} == {f"explorer.cover.{k}" for k in load()}
