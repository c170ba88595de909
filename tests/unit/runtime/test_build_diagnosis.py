"""A failed agent image build is explained in one plain line from what pip, apt, curl and Podman really print (the
samples in ``build_failures/`` were recorded behind a TLS-intercepting proxy with no registry reachable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoclaw_app.errors import ConfigError
from nanoclaw_app.runtime.image import agent_image_dir, read_ca_certificates
from nanoclaw_app.services.engine_check import diagnose
from tests.fakes.certs import ca_pem

SAMPLES = Path(__file__).parent / "build_failures"
DEFAULT_BASE = "docker.io/library/python:3.11-slim-bookworm"
LOCAL_BASE = "localhost/nanoclaw-base:bookworm"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("output", ["pip_proxy_in_container.txt", "pip_quiet_proxy_in_container.txt",
                                    "pip_self_signed.txt", "apt_proxy_in_container.txt", "curl_self_signed.txt"])
def test_a_certificate_the_build_does_not_trust_is_named_in_words(output: str) -> None:
    found = diagnose(sample("podman_pip_step_failed.txt"), sample(output), LOCAL_BASE)
    assert found.cause == "tls"
    assert found.headline.startswith("Your network checks secure connections with its own certificate")
    assert "\n" not in found.headline
    assert "certificate file" in found.fix


def test_quiet_pip_hides_the_certificate_and_the_image_no_longer_runs_it_quietly() -> None:
    """With ``-q`` and no retry, pip says only "No matching distribution found": nothing names the certificate."""
    quiet = diagnose(sample("podman_pip_step_failed.txt"), sample("pip_quiet_self_signed_no_retry.txt"), LOCAL_BASE)
    assert quiet.cause == "other"
    containerfile = (agent_image_dir() / "Containerfile").read_text()
    pip_lines = [line for line in containerfile.splitlines() if "pip install" in line]
    assert pip_lines
    assert all(" -q" not in line for line in pip_lines)


def test_a_base_image_that_cannot_be_pulled_says_so_in_one_line() -> None:
    found = diagnose(sample("podman_pull_no_registry.txt"), "STEP 1/11: FROM python:3.11-slim-bookworm\n",
                     DEFAULT_BASE)
    assert found.cause == "pull"
    assert found.headline == ("NanoClaw could not download the base image python:3.11-slim-bookworm: the image "
                              "registry cannot be reached from this computer.")
    assert "already on this computer" in found.fix


def test_a_later_steps_network_trouble_is_not_blamed_on_the_base_image() -> None:
    output = (f"STEP 1/11: FROM {DEFAULT_BASE}\n"
              "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure "
              "resolving 'deb.debian.org'\n")
    found = diagnose("building x failed: building at STEP \"RUN set -eux\": exit status 100", output, DEFAULT_BASE)
    assert found.cause == "network"
    assert found.headline == "The build could not download the programs the agent needs."


def test_a_full_disk_and_an_unknown_failure_have_their_own_words() -> None:
    assert diagnose("write /var/lib/containers/storage/overlay/x: no space left on device", "",
                    DEFAULT_BASE).cause == "disk"
    unknown = diagnose("building localhost/nanoclaw-agent:x failed: exit status 2", "", DEFAULT_BASE)
    assert (unknown.cause, unknown.headline) == ("other", "The agent image could not be built.")


def test_a_ca_file_must_hold_certificates_that_parse(tmp_path: Path) -> None:
    good = tmp_path / "proxy.pem"
    good.write_bytes(b"My proxy\n" + ca_pem() + ca_pem("Second CA"))
    assert len(read_ca_certificates(str(good))) == 2
    damaged = tmp_path / "damaged.pem"
    damaged.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="not a certificate that can be read"):
        read_ca_certificates(str(damaged))
