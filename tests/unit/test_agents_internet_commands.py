"""``nanoclaw agents internet``: show and set an agent's internet access, refused as the page refuses."""

from __future__ import annotations

import json

import pytest

from nanoclaw_app.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["agents", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_showing_and_setting_internet_access(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "create", "Nano")[0] == 0
    code, out, _ = run(capsys, "internet", "Nano")
    assert code == 0
    assert "Nano may reach any site; every connection is logged" in out
    assert "home network is never reachable" in out

    code, out, _ = run(capsys, "internet", "nano", "--sites", "GitHub.com, pypi.org")
    assert code == 0
    assert "Nano may reach only: github.com, pypi.org (and their subdomains)" in out

    code, out, _ = run(capsys, "internet", "Nano", "--open", "--json")
    assert code == 0
    assert json.loads(out)["mode"] == "open"
    assert json.loads(out)["sites"] == ["github.com", "pypi.org"]  # kept for switching back

    code, out, _ = run(capsys, "internet", "Nano", "--sites", "")
    assert code == 0
    assert "Nano may reach no site at all" in out
    code, out, _ = run(capsys, "show", "Nano")
    assert "internet      no site at all; never the home network" in out
    code, out, _ = run(capsys, "show", "Nano", "--json")
    assert (json.loads(out)["internet_mode"], json.loads(out)["internet_sites"]) == ("sites", [])


def test_a_bad_site_is_refused_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "create", "Nano")
    code, _, err = run(capsys, "internet", "Nano", "--sites", "github.com,http://,ok.org")
    assert code == 1
    assert "Line 2: 'http://' is not a site: write a domain like github.com" in err
    code, out, _ = run(capsys, "internet", "Nano")
    assert "may reach any site" in out  # nothing was saved


def test_open_and_sites_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "create", "Nano")
    with pytest.raises(SystemExit):
        main(["agents", "internet", "Nano", "--open", "--sites", "github.com"])
