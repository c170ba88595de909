"""Extra folders an agent may see: the mount allowlist and the checks every requested mount must pass.

An agent's ``container_configs.additional_mounts`` asks for host folders; nothing is mounted unless the user's
allowlist (``settings.paths.mount_allowlist``, outside the data dir) names a root that contains it. The checks run on
the real (symlink-resolved) path, so a link inside an allowed root cannot smuggle in ``~/.ssh``. Without an allowlist
file every extra mount is refused: the safe default for a fresh install.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nanoclaw_app.errors import ConfigError

EXTRA_MOUNT_ROOT = "/workspace/extra"
"""Every extra mount appears below this folder in the container."""

DEFAULT_BLOCKED_PATTERNS: tuple[str, ...] = (
    ".ssh", ".gnupg", ".gpg", ".aws", ".azure", ".gcloud", ".kube", ".docker", "credentials", ".env", ".netrc",
    ".npmrc", ".pypirc", "id_rsa", "id_ed25519", "private_key", ".secret",
)
"""Always refused, whatever the allowlist says: a path component containing one of these (any case) is a secret."""

_ROOTS_KEYS = ("allowed_roots", "allowedRoots")
_PATTERNS_KEYS = ("blocked_patterns", "blockedPatterns")
_RW_KEYS = ("allow_read_write", "allowReadWrite")
_FILE_FORMAT = (
    'expected {"allowed_roots": [{"path": "~/projects", "allow_read_write": false, "description": "..."}], '
    '"blocked_patterns": ["..."]}'
)


@dataclass(frozen=True, slots=True)
class MountRequest:
    """One extra mount an agent's container config asks for."""

    host_path: str
    container_path: str | None = None
    read_write: bool = False

    @classmethod
    def from_json(cls, item: object) -> MountRequest:
        """Parse one item of ``container_configs.additional_mounts``.

        Accepts a bare host path string, or an object with ``host_path`` / ``hostPath``, optional ``container_path``
        / ``containerPath``, and either ``read_write`` / ``readWrite`` or the original's ``readonly`` (inverted).
        Raises ``ConfigError`` on any other shape, because a silently dropped mount would confuse the user more.
        """
        if isinstance(item, str):
            if not item.strip():
                raise ConfigError("an additional mount has an empty host path")
            return cls(host_path=item)
        if not isinstance(item, dict):
            raise ConfigError(f"an additional mount must be a path or an object, not {type(item).__name__}")
        allowed = {"host_path", "hostPath", "container_path", "containerPath", "read_write", "readWrite",
                   "readonly", "readOnly", "read_only"}
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise ConfigError(f"additional mount {item!r} has unknown keys {unknown}; use host_path, container_path "
                              "and read_write")
        host = _one_of(item, ("host_path", "hostPath"), str, "additional mount")
        if not isinstance(host, str) or not host.strip():
            raise ConfigError(f"additional mount {item!r} needs a non-empty host_path")
        container = _one_of(item, ("container_path", "containerPath"), str, "additional mount")
        rw = _one_of(item, ("read_write", "readWrite"), bool, "additional mount")
        ro = _one_of(item, ("readonly", "readOnly", "read_only"), bool, "additional mount")
        if rw is not None and ro is not None and rw == ro:
            raise ConfigError(f"additional mount {item!r} is both read-write and read-only; keep one of the two keys")
        read_write = bool(rw) if rw is not None else (ro is False)
        return cls(host_path=host, container_path=container if isinstance(container, str) else None,
                   read_write=read_write)


def requests_from_json(text: str) -> list[MountRequest]:
    """Parse a whole ``additional_mounts`` column (a JSON list); ``ConfigError`` when it is not one."""
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError as err:
        raise ConfigError(f"additional_mounts is not valid JSON ({err}); expected a list of mounts") from err
    if not isinstance(items, list):
        raise ConfigError("additional_mounts must be a JSON list of mounts")
    return [MountRequest.from_json(item) for item in items]


@dataclass(frozen=True, slots=True)
class AllowedRoot:
    """A host folder under which extra mounts are allowed."""

    path: Path
    allow_read_write: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Allowlist:
    """The user's mount allowlist. Empty (the default) refuses every extra mount."""

    roots: tuple[AllowedRoot, ...] = ()
    blocked_patterns: tuple[str, ...] = ()
    """Added to ``DEFAULT_BLOCKED_PATTERNS``; they never replace them."""


def load_allowlist(path: Path) -> Allowlist:
    """Read the allowlist file; a missing file is an empty allowlist, a malformed one a ``ConfigError``.

    Root paths are ``~``-expanded here but resolved only when mounts are checked, so a symlink changed later is
    judged by where it points then.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Allowlist()
    except OSError as err:
        raise ConfigError(f"cannot read the mount allowlist {path}: {err}; fix its permissions") from err
    fix = f"fix {path} ({_FILE_FORMAT}) or delete it to refuse every extra mount"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"the mount allowlist {path} is not valid JSON ({err}); {fix}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"the mount allowlist {path} must be a JSON object; {fix}")
    where = f"the mount allowlist {path}"
    unknown = sorted(set(data) - {*_ROOTS_KEYS, *_PATTERNS_KEYS})
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; {fix}")
    roots_raw = _one_of(data, _ROOTS_KEYS, list, where, fix)
    patterns_raw = _one_of(data, _PATTERNS_KEYS, list, where, fix)
    roots = tuple(_parse_root(entry, where, fix) for entry in (roots_raw or []))
    patterns: list[str] = []
    for pattern in patterns_raw or []:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(f"{where}: blocked pattern {pattern!r} must be a non-empty string; {fix}")
        patterns.append(pattern.strip())
    return Allowlist(roots=roots, blocked_patterns=tuple(patterns))


def save_allowlist(path: Path, allowlist: Allowlist) -> None:
    """Write the allowlist atomically, readable only by the user (it decides what agents may see)."""
    data = {
        "allowed_roots": [
            {"path": str(root.path), "allow_read_write": root.allow_read_write, "description": root.description}
            for root in allowlist.roots
        ],
        "blocked_patterns": list(allowlist.blocked_patterns),
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


@dataclass(frozen=True, slots=True)
class ResolvedMount:
    """A mount that passed every check: bind ``source`` at ``target``."""

    source: Path
    target: str
    read_only: bool
    note: str = ""
    """Why it is read-only although read-write was asked for (empty otherwise)."""


@dataclass(frozen=True, slots=True)
class RefusedMount:
    """A mount that was not made, and why (shown to the user)."""

    request: MountRequest
    reason: str


def resolve_mounts(
    requests: Sequence[MountRequest], allowlist: Allowlist, *, protected: Sequence[Path]
) -> tuple[list[ResolvedMount], list[RefusedMount]]:
    """Check each requested mount against the allowlist; return the ones to make and the refused ones with reasons.

    ``protected`` are folders that must never be visible to an agent, nor any folder inside or above them (the
    NanoClaw home dir with every session and the config dir with this allowlist). When roots nest, the deepest root
    containing the path decides read-write. A mount whose container path overlaps an earlier one is refused.
    """
    roots = _resolved_roots(allowlist)
    guarded = [_resolve_quietly(p) for p in protected]
    patterns = tuple(p.casefold() for p in (*DEFAULT_BLOCKED_PATTERNS, *allowlist.blocked_patterns))
    accepted: list[ResolvedMount] = []
    refused: list[RefusedMount] = []
    for request in requests:
        try:
            accepted.append(_check(request, roots, guarded, patterns, accepted))
        except _Refused as refusal:
            refused.append(RefusedMount(request, str(refusal)))
    return accepted, refused


class _Refused(Exception):
    """Internal: the reason one mount is refused."""


def _check(
    request: MountRequest,
    roots: list[tuple[Path, AllowedRoot]],
    guarded: list[Path],
    patterns: tuple[str, ...],
    accepted: list[ResolvedMount],
) -> ResolvedMount:
    expanded = _expand(request.host_path)
    if not expanded.is_absolute():
        raise _Refused(f"host path {request.host_path!r} must be absolute (or start with ~)")
    try:
        source = expanded.resolve(strict=True)
    except FileNotFoundError:
        raise _Refused(f"host path {request.host_path} does not exist") from None
    except (OSError, RuntimeError) as err:
        raise _Refused(f"host path {request.host_path} cannot be resolved: {err}") from None
    for part in source.parts:
        folded = part.casefold()
        for pattern in patterns:
            if pattern in folded:
                raise _Refused(f"{source} is blocked: {part!r} matches the blocked pattern {pattern!r} "
                               "(it may hold credentials)")
    for folder in guarded:
        if source == folder or source.is_relative_to(folder) or folder.is_relative_to(source):
            raise _Refused(f"{source} would expose NanoClaw's own data or settings ({folder}); "
                           "mount a folder outside it")
    root = _deepest_root(source, roots)
    if root is None:
        if not roots:
            raise _Refused("the mount allowlist allows no folders yet; add a root containing this folder to allow it")
        raise _Refused(f"{source} is not under any allowed root; add it (or a parent folder) to the mount allowlist")
    target = _container_target(request.container_path if request.container_path is not None else expanded.name)
    for other in accepted:
        if target == other.target or _nested(target, other.target):
            raise _Refused(f"container path {target} overlaps the mount of {other.source} at {other.target}; "
                           "give one of them another container_path")
    read_only = not (request.read_write and root.allow_read_write)
    note = ""
    if request.read_write and read_only:
        note = f"read-only: the allowed root {root.path} does not allow read-write"
    return ResolvedMount(source=source, target=target, read_only=read_only, note=note)


def _container_target(name: str) -> str:
    """``/workspace/extra/<name>``; refuses names that could escape that folder or be read as mount options."""
    if not name or not name.strip():
        raise _Refused("container path is empty; give the mount a container_path")
    if ":" in name:
        raise _Refused(f"container path {name!r} contains ':', which would be read as a mount option")
    if "\\" in name or "\x00" in name:
        raise _Refused(f"container path {name!r} contains a backslash or NUL; use '/' between folder names")
    pure = PurePosixPath(name)
    if pure.is_absolute():
        raise _Refused(f"container path {name!r} must be relative (it is placed under {EXTRA_MOUNT_ROOT})")
    if ".." in pure.parts:
        raise _Refused(f"container path {name!r} must not contain '..'")
    if not pure.parts:
        raise _Refused(f"container path {name!r} names no folder")
    return f"{EXTRA_MOUNT_ROOT}/{pure.as_posix()}"


def _nested(a: str, b: str) -> bool:
    return a.startswith(b + "/") or b.startswith(a + "/")


def _resolved_roots(allowlist: Allowlist) -> list[tuple[Path, AllowedRoot]]:
    """Roots that exist, resolved; a root that is missing allows nothing (it cannot contain a real path)."""
    out: list[tuple[Path, AllowedRoot]] = []
    for root in allowlist.roots:
        with contextlib.suppress(OSError, RuntimeError):
            out.append((_expand(root.path).resolve(strict=True), root))
    return out


def _deepest_root(source: Path, roots: list[tuple[Path, AllowedRoot]]) -> AllowedRoot | None:
    best: tuple[int, AllowedRoot] | None = None
    for resolved, root in roots:
        if (source == resolved or source.is_relative_to(resolved)) and (best is None or len(resolved.parts) > best[0]):
            best = (len(resolved.parts), root)
    return best[1] if best else None


def _expand(path: str | Path) -> Path:
    """``~`` expanded; left as it is when there is no home dir to expand to (then it is refused as relative)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def _resolve_quietly(path: Path) -> Path:
    """Protected dirs may not exist yet; resolve as far as possible rather than skip the guard."""
    return _expand(path).resolve(strict=False)


def _parse_root(entry: object, where: str, fix: str) -> AllowedRoot:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: each allowed root must be an object with a path; {fix}")
    unknown = sorted(set(entry) - {"path", "description", *_RW_KEYS})
    if unknown:
        raise ConfigError(f"{where}: allowed root {entry!r} has unknown keys {unknown}; {fix}")
    raw = entry.get("path")
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{where}: allowed root {entry!r} needs a non-empty string path; {fix}")
    path = _expand(raw.strip())
    if not path.is_absolute():
        raise ConfigError(f"{where}: allowed root {raw!r} must be an absolute path or start with ~; {fix}")
    rw = _one_of(entry, _RW_KEYS, bool, where, fix)
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: the description of allowed root {raw!r} must be a string; {fix}")
    return AllowedRoot(path=path, allow_read_write=bool(rw), description=description)


def _one_of(data: dict[str, Any], keys: Sequence[str], kind: type, where: str, fix: str = "") -> Any:
    """The value under whichever spelling is present (snake or camel case), type-checked; ``None`` when absent."""
    suffix = f"; {fix}" if fix else ""
    present = [k for k in keys if k in data]
    if len(present) > 1:
        raise ConfigError(f"{where} sets both {present[0]!r} and {present[1]!r}; keep one{suffix}")
    if not present:
        return None
    value = data[present[0]]
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: {present[0]!r} must be {_KIND_NAMES.get(kind, kind.__name__)}, "
                          f"not {json.dumps(value)}{suffix}")
    return value


_KIND_NAMES = {list: "a JSON list", bool: "true or false", str: "a string"}
