"""The agent image's inputs: pinned requirements cover what the runner imports, and tags follow the inputs."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path
from typing import cast

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.runtime.image import AgentImages, agent_image_dir, read_ca_certificates
from nanoclaw_app.runtime.podman_api import PodmanApi
from tests.fakes.certs import ca_pem

ROOT = Path(__file__).resolve().parents[3]


def pinned() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (agent_image_dir() / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line}: the image pins exact versions"
            pins[req.name.lower()] = Version(spec.version)
    return pins


def third_party_imports() -> set[str]:
    names: set[str] = set()
    for file in (ROOT / "agent_runner").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "agent_runner"}


def test_every_library_the_runner_imports_is_installed_in_the_image() -> None:
    dists = importlib.metadata.packages_distributions()
    needed = {dists[name][0].lower() for name in third_party_imports()}
    assert needed, "the scan found no imports"
    assert needed <= set(pinned()), f"missing from requirements.txt: {sorted(needed - set(pinned()))}"


def test_image_pins_satisfy_the_runner_lower_bounds_in_pyproject() -> None:
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["runner"]
    pins = pinned()
    for item in groups:
        req = Requirement(item)
        assert req.name.lower() in pins, f"{req.name} is a runner dependency but not in the image"
        assert pins[req.name.lower()] in req.specifier, f"{req.name} {pins[req.name.lower()]} violates {req}"


def test_derived_tags_depend_on_the_packages_not_their_order() -> None:
    base = "localhost/nanoclaw-agent:abc"
    one = AgentImages.derived_tag(base, ["ffmpeg", "jq"], ["pandas"])
    assert one == AgentImages.derived_tag(base, ["jq", "ffmpeg"], ["pandas"])
    assert one != AgentImages.derived_tag(base, ["jq"], ["pandas"])
    assert one != AgentImages.derived_tag("localhost/nanoclaw-agent:def", ["ffmpeg", "jq"], ["pandas"])
    assert AgentImages.derived_tag(base, ["x"], []) != AgentImages.derived_tag(base, [], ["x"])




def test_ca_certificates_are_split_one_per_file(tmp_path: Path) -> None:
    bundle = tmp_path / "corp.pem"
    bundle.write_bytes(b"intro text\n" + ca_pem() + ca_pem("Another CA"))
    certs = read_ca_certificates(str(bundle))
    assert len(certs) == 2
    assert all(c.startswith(b"-----BEGIN CERTIFICATE-----") for c in certs)
    assert read_ca_certificates("") == []


def test_a_ca_file_without_certificates_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here")
    with pytest.raises(ConfigError, match="no PEM certificate"):
        read_ca_certificates(str(empty))
    with pytest.raises(ConfigError, match="cannot read"):
        read_ca_certificates(str(tmp_path / "missing.pem"))


class CountingEngine:
    """Answers image lookups from a set and records builds (stands in for the Podman API)."""

    def __init__(self, images: set[str]) -> None:
        self.images = images
        self.lookups: list[str] = []
        self.builds: list[str] = []

    async def image_id(self, ref: str) -> str | None:
        self.lookups.append(ref)
        return f"id-{ref}" if ref in self.images or ref.startswith("base") else None

    async def build(self, context: Path, tag: str, **_: object) -> None:
        self.builds.append(tag)
        self.images.add(tag)


async def test_a_present_image_is_asked_for_once_per_run_until_a_start_says_it_is_gone() -> None:
    engine = CountingEngine(set())
    images = AgentImages(lambda: cast(PodmanApi, engine), base_image="base:1")
    tag = await images.ensure_base()
    assert engine.builds == [tag]
    for _ in range(3):
        assert await images.ensure_base() == tag  # every cold start: no engine round trip for the image
    assert engine.lookups.count(tag) == 1

    engine.images.discard(tag)  # someone removed it behind our back; the next start fails and forgets it
    assert images.forget(tag)
    assert await images.ensure_base() == tag
    assert engine.builds == [tag, tag]  # rebuilt instead of failing every start
    assert not images.forget("never-seen:tag")
