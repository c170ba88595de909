"""Mount allowlist: only folders under an allowed root reach an agent, never secrets or NanoClaw's own data."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.runtime.mounts import (
    AllowedRoot,
    Allowlist,
    MountRequest,
    RefusedMount,
    ResolvedMount,
    load_allowlist,
    requests_from_json,
    resolve_mounts,
    save_allowlist,
)


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    (root / "app").mkdir(parents=True)
    (root / "notes").mkdir()
    return root


def _resolve(requests: list[MountRequest], allowlist: Allowlist,
             protected: tuple[Path, ...] = ()) -> tuple[list[ResolvedMount], list[RefusedMount]]:
    return resolve_mounts(requests, allowlist, protected=protected)


def _only_refusal(requests: list[MountRequest], allowlist: Allowlist, protected: tuple[Path, ...] = ()) -> str:
    accepted, refused = _resolve(requests, allowlist, protected)
    assert accepted == []
    assert len(refused) == 1
    return refused[0].reason


def test_folder_under_an_allowed_root_is_mounted_read_only_under_workspace_extra(projects: Path) -> None:
    accepted, refused = _resolve([MountRequest(str(projects / "app"))], Allowlist((AllowedRoot(projects),)))
    assert refused == []
    assert accepted == [ResolvedMount(source=(projects / "app").resolve(), target="/workspace/extra/app",
                                      read_only=True)]


def test_container_path_names_the_mount(projects: Path) -> None:
    accepted, _ = _resolve([MountRequest(str(projects / "app"), "code/my-app")], Allowlist((AllowedRoot(projects),)))
    assert accepted[0].target == "/workspace/extra/code/my-app"


def test_tilde_host_path_is_expanded(projects: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(projects.parent))
    accepted, refused = _resolve([MountRequest("~/projects/notes")], Allowlist((AllowedRoot(Path("~/projects")),)))
    assert refused == []
    assert accepted[0].source == (projects / "notes").resolve()


def test_no_allowlist_refuses_every_mount(projects: Path) -> None:
    reason = _only_refusal([MountRequest(str(projects / "app"))], Allowlist())
    assert "allows no folders" in reason


def test_folder_outside_every_root_is_refused(projects: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    reason = _only_refusal([MountRequest(str(elsewhere))], Allowlist((AllowedRoot(projects),)))
    assert "not under any allowed root" in reason


def test_missing_host_path_is_refused_with_a_reason(projects: Path) -> None:
    reason = _only_refusal([MountRequest(str(projects / "gone"))], Allowlist((AllowedRoot(projects),)))
    assert "does not exist" in reason


def test_relative_host_path_is_refused(projects: Path) -> None:
    reason = _only_refusal([MountRequest("projects/app")], Allowlist((AllowedRoot(projects),)))
    assert "absolute" in reason


@pytest.mark.parametrize("name", [".ssh", ".SSH", ".Aws", "my.env.local", "id_rsa.pub", "Credentials.json",
                                  ".gnupg", ".kube", "PRIVATE_KEY.pem"])
def test_built_in_blocked_patterns_refuse_secret_folders_in_any_case(projects: Path, name: str) -> None:
    (projects / name).mkdir()
    reason = _only_refusal([MountRequest(str(projects / name))], Allowlist((AllowedRoot(projects, True),)))
    assert "blocked" in reason


def test_blocked_pattern_in_a_nested_component_refuses_the_whole_path(projects: Path) -> None:
    inner = projects / "app" / ".docker" / "cfg"
    inner.mkdir(parents=True)
    reason = _only_refusal([MountRequest(str(inner))], Allowlist((AllowedRoot(projects),)))
    assert "'.docker'" in reason


def test_user_blocked_patterns_add_to_the_built_in_ones(projects: Path) -> None:
    (projects / "taxes").mkdir()
    allowlist = Allowlist((AllowedRoot(projects),), blocked_patterns=("TAXES",))
    assert "blocked" in _only_refusal([MountRequest(str(projects / "taxes"))], allowlist)
    (projects / ".ssh").mkdir()
    assert "blocked" in _only_refusal([MountRequest(str(projects / ".ssh"))], allowlist)


def test_symlink_inside_a_root_cannot_escape_it(projects: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (projects / "link").symlink_to(outside)
    reason = _only_refusal([MountRequest(str(projects / "link"))], Allowlist((AllowedRoot(projects),)))
    assert "not under any allowed root" in reason
    assert str(outside) in reason


def test_symlink_to_a_secret_folder_is_blocked_by_its_real_path(projects: Path, tmp_path: Path) -> None:
    secret = tmp_path / ".ssh"
    secret.mkdir()
    (projects / "keys").symlink_to(secret)
    reason = _only_refusal([MountRequest(str(projects / "keys"))], Allowlist((AllowedRoot(tmp_path),)))
    assert "blocked" in reason


def test_root_given_through_a_symlink_is_resolved(projects: Path, tmp_path: Path) -> None:
    (tmp_path / "shortcut").symlink_to(projects)
    accepted, refused = _resolve([MountRequest(str(projects / "app"))],
                                 Allowlist((AllowedRoot(tmp_path / "shortcut"),)))
    assert refused == []
    assert accepted[0].source == (projects / "app").resolve()


@pytest.mark.parametrize("container_path", ["../escape", "a/../../b", "/abs", "c:/x", "app:rw", "", "  ", ".",
                                            "a\\b"])
def test_unsafe_container_paths_are_refused(projects: Path, container_path: str) -> None:
    reason = _only_refusal([MountRequest(str(projects / "app"), container_path)], Allowlist((AllowedRoot(projects),)))
    assert "container path" in reason


def test_read_write_only_when_both_mount_and_root_allow_it(projects: Path) -> None:
    rw_root = Allowlist((AllowedRoot(projects, allow_read_write=True),))
    ro_root = Allowlist((AllowedRoot(projects, allow_read_write=False),))
    app = str(projects / "app")

    both, _ = _resolve([MountRequest(app, read_write=True)], rw_root)
    assert both[0].read_only is False
    assert both[0].note == ""

    mount_only, _ = _resolve([MountRequest(app, read_write=True)], ro_root)
    assert mount_only[0].read_only is True
    assert "read-only" in mount_only[0].note

    root_only, _ = _resolve([MountRequest(app, read_write=False)], rw_root)
    assert root_only[0].read_only is True
    assert root_only[0].note == ""


def test_deepest_root_decides_read_write(projects: Path) -> None:
    allowlist = Allowlist((AllowedRoot(projects, allow_read_write=True), AllowedRoot(projects / "app")))
    accepted, _ = _resolve([MountRequest(str(projects / "app"), read_write=True),
                            MountRequest(str(projects / "notes"), read_write=True)], allowlist)
    assert [(m.target, m.read_only) for m in accepted] == [("/workspace/extra/app", True),
                                                           ("/workspace/extra/notes", False)]


@pytest.mark.parametrize("which", ["home", "config"])
def test_nanoclaw_dirs_and_everything_inside_or_above_them_are_refused(tmp_path: Path, which: str) -> None:
    user = tmp_path / "user"
    home, config = user / "data" / "nanoclaw", user / "cfg" / "nanoclaw"
    (home / "sessions").mkdir(parents=True)
    config.mkdir(parents=True)
    protected = (home, config)
    folder = home if which == "home" else config
    allowlist = Allowlist((AllowedRoot(tmp_path, allow_read_write=True),))
    candidates = [folder, folder.parent, user]
    if which == "home":
        candidates.append(home / "sessions")
    for candidate in candidates:
        reason = _only_refusal([MountRequest(str(candidate))], allowlist, protected)
        assert "NanoClaw's own data or settings" in reason


def test_duplicate_and_nested_container_paths_are_refused(projects: Path) -> None:
    allowlist = Allowlist((AllowedRoot(projects),))
    other = projects / "other" / "app"
    other.mkdir(parents=True)
    accepted, refused = _resolve([MountRequest(str(projects / "app")), MountRequest(str(other)),
                                  MountRequest(str(projects / "notes"), "app/notes")], allowlist)
    assert [m.source for m in accepted] == [(projects / "app").resolve()]
    assert [r.request.host_path for r in refused] == [str(other), str(projects / "notes")]
    assert all("overlaps" in r.reason for r in refused)


def test_one_refusal_does_not_stop_the_other_mounts(projects: Path) -> None:
    accepted, refused = _resolve([MountRequest(str(projects / "gone")), MountRequest(str(projects / "notes"))],
                                 Allowlist((AllowedRoot(projects),)))
    assert [m.target for m in accepted] == ["/workspace/extra/notes"]
    assert len(refused) == 1


# --- the allowlist file -------------------------------------------------------------------------------------------


def test_missing_allowlist_file_is_empty(tmp_path: Path) -> None:
    assert load_allowlist(tmp_path / "none.json") == Allowlist()


def test_snake_case_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "allow.json"
    path.write_text(json.dumps({
        "allowed_roots": [{"path": "~/projects", "allow_read_write": True, "description": "code"},
                          {"path": "/srv/data"}],
        "blocked_patterns": ["taxes"],
    }))
    assert load_allowlist(path) == Allowlist(
        roots=(AllowedRoot(tmp_path / "projects", True, "code"), AllowedRoot(Path("/srv/data"))),
        blocked_patterns=("taxes",),
    )


def test_camel_case_file_of_the_original_loads(tmp_path: Path) -> None:
    path = tmp_path / "allow.json"
    path.write_text(json.dumps({
        "allowedRoots": [{"path": "/srv/code", "allowReadWrite": True, "description": "repos"}],
        "blockedPatterns": ["password"],
    }))
    assert load_allowlist(path) == Allowlist(roots=(AllowedRoot(Path("/srv/code"), True, "repos"),),
                                             blocked_patterns=("password",))


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"allowed_roots": {"path": "/x"}}', "'allowed_roots' must be a JSON list"),
    ('{"allowed_roots": ["/x"]}', "must be an object with a path"),
    ('{"allowed_roots": [{"path": ""}]}', "non-empty string path"),
    ('{"allowed_roots": [{"path": "relative/dir"}]}', "absolute path"),
    ('{"allowed_roots": [{"path": "/x", "allow_read_write": "yes"}]}', "must be true or false"),
    ('{"allowed_roots": [{"path": "/x", "allowReadWrite": true, "allow_read_write": false}]}', "keep one"),
    ('{"allowed_root": []}', "unknown keys ['allowed_root']"),
    ('{"blocked_patterns": [3]}', "must be a non-empty string"),
])
def test_malformed_allowlist_says_what_is_wrong_and_how_to_fix_it(tmp_path: Path, content: str,
                                                                   expected: str) -> None:
    path = tmp_path / "allow.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_allowlist(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "delete it to refuse every extra mount" in message


def test_save_then_load_round_trips_privately(tmp_path: Path) -> None:
    path = tmp_path / "config" / "mount-allowlist.json"
    allowlist = Allowlist((AllowedRoot(Path("/srv/code"), True, "repos"),), blocked_patterns=("taxes",))
    save_allowlist(path, allowlist)
    assert load_allowlist(path) == allowlist
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["mount-allowlist.json"]
    save_allowlist(path, Allowlist())
    assert load_allowlist(path) == Allowlist()


# --- requests from container_configs.additional_mounts -----------------------------------------------------------


def test_additional_mounts_accept_strings_snake_and_camel_case() -> None:
    assert requests_from_json(json.dumps([
        "/srv/a",
        {"host_path": "/srv/b", "container_path": "b", "read_write": True},
        {"hostPath": "/srv/c", "containerPath": "c", "readonly": False},
        {"hostPath": "/srv/d", "readonly": True},
    ])) == [
        MountRequest("/srv/a"),
        MountRequest("/srv/b", "b", True),
        MountRequest("/srv/c", "c", True),
        MountRequest("/srv/d"),
    ]
    assert requests_from_json("") == []


@pytest.mark.parametrize("item", [3, None, "", {"container_path": "x"}, {"host_path": 5},
                                  {"host_path": "/x", "mode": "rw"}, {"host_path": "/x", "read_write": "yes"},
                                  {"host_path": "/x", "read_write": True, "readonly": True}])
def test_bad_mount_items_raise_config_error(item: object) -> None:
    with pytest.raises(ConfigError):
        MountRequest.from_json(item)


def test_additional_mounts_must_be_a_json_list() -> None:
    with pytest.raises(ConfigError, match="JSON list"):
        requests_from_json('{"host_path": "/x"}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        requests_from_json("[")
