"""What the engine's ``podman info`` means for agents: the rootless refusal, the notes and the SELinux option.

The ``info`` documents are shaped like the ones Podman 4.3 returned on this machine, rootful and rootless.
"""

from __future__ import annotations

from typing import Any

from nanoclaw_app.runtime.engine_info import engine_notes, free_subid_start, rootless_refusal, security_options


def info(*, rootless: bool = True, uidmap: list[dict[str, int]] | None = None, cgroup: str = "v2",
         controllers: list[str] | None = None, driver: str = "overlay", selinux: bool = False,
         graph_options: dict[str, str] | None = None) -> dict[str, Any]:
    mapped = [{"container_id": 0, "host_id": 1000, "size": 1}, {"container_id": 1, "host_id": 100000, "size": 65536}]
    return {
        "host": {
            "cgroupVersion": cgroup,
            "cgroupControllers": ["cpu", "memory", "pids"] if controllers is None else controllers,
            "idMappings": {"uidmap": mapped if uidmap is None else uidmap, "gidmap": mapped},
            "security": {"rootless": rootless, "selinuxEnabled": selinux},
        },
        "store": {"graphDriverName": driver, "graphOptions": graph_options or {}},
        "version": {"Version": "4.3.1"},
    }


ONE_ID = [{"container_id": 0, "host_id": 1002, "size": 1}]
SUBUID = "alice:100000:65536\nbob:165536:65536\n"


def test_a_rootless_user_without_subordinate_ids_is_told_the_commands_with_a_range_nobody_uses() -> None:
    refusal = rootless_refusal(info(uidmap=ONE_ID), user="carol", subid_texts=[SUBUID, SUBUID], have_newuidmap=True)

    assert refusal is not None
    assert "no subordinate ids in /etc/subuid" in refusal.problem
    assert "`sudo usermod --add-subuids 262144-327679 --add-subgids 262144-327679 carol`" in refusal.fix
    assert "podman system migrate" in refusal.fix
    assert "uidmap" not in refusal.fix


def test_without_newuidmap_the_fix_starts_with_installing_it() -> None:
    refusal = rootless_refusal(info(uidmap=ONE_ID), user="carol", subid_texts=["", ""], have_newuidmap=False)

    assert refusal is not None
    assert refusal.fix.startswith("install the uidmap package")
    assert "--add-subuids 100000-165535" in refusal.fix


def test_engines_that_can_unpack_images_are_not_refused() -> None:
    assert rootless_refusal(info(), user="carol", subid_texts=[], have_newuidmap=True) is None
    assert rootless_refusal(info(rootless=False, uidmap=[]), user="root", subid_texts=[]) is None
    stores_as_user = info(uidmap=ONE_ID, driver="vfs", graph_options={"vfs.ignore_chown_errors": "true"})
    assert rootless_refusal(stores_as_user, user="carol", subid_texts=[], have_newuidmap=True) is None


def test_free_subid_start_passes_every_range_in_both_files() -> None:
    assert free_subid_start(["", ""]) == 100000
    assert free_subid_start(["a:100000:65536\n", "a:100000:65536\nb:200000:1000\n"]) == 262144
    assert free_subid_start(["# a comment\nbroken line\n"]) == 100000


def test_limits_a_rootless_engine_cannot_apply_are_named() -> None:
    [v1] = engine_notes(info(cgroup="v1", controllers=[]))
    [no_cpu] = engine_notes(info(controllers=["memory", "pids"]))

    assert "without their memory, CPU and process-count limits" in v1
    assert "(cgroup v1)" in v1
    assert "without their CPU limits" in no_cpu
    assert engine_notes(info()) == []
    assert engine_notes(info(rootless=False, cgroup="v1", controllers=[])) == []


def test_vfs_storage_is_explained_with_its_fix() -> None:
    [note] = engine_notes(info(driver="vfs"))

    assert "copies the whole agent image" in note
    assert "containers-storage" in note


def test_selinux_label_separation_is_off_only_where_selinux_is_on() -> None:
    assert security_options(info(selinux=True)) == ["disable"]
    assert security_options(info()) == []


def test_an_engine_that_does_not_report_its_mappings_is_not_refused() -> None:
    """A machine VM's or an older engine's info may leave them out: no guess then."""
    assert rootless_refusal(info(uidmap=[]), user="carol", subid_texts=[], have_newuidmap=True) is None


def test_a_user_with_ranges_but_without_newuidmap_is_told_to_install_it_and_nothing_else() -> None:
    refusal = rootless_refusal(info(uidmap=ONE_ID), user="bob", subid_texts=[SUBUID, SUBUID], have_newuidmap=False)

    assert refusal is not None
    assert "the uidmap package, which lets Podman use your subordinate ids, is missing" in refusal.problem
    assert refusal.fix.startswith("install the uidmap package")
    assert "usermod" not in refusal.fix
