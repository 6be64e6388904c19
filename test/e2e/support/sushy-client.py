#!/usr/bin/python3
"""Drives vm-runner's Redfish service with sushy, the library bare-metal provisioning uses.

    sushy-client.py URL USER PASSWORD CA_FILE SYSTEM_PATH COMMAND [ARG...]

Commands: system, reset TYPE, boot TARGET ENABLED, insert IMAGE_URL, eject, media.
Prints one JSON object on stdout; a failure exits non-zero with sushy's message on stderr.
"""
import json
import sys

import sushy

MANAGER = "/redfish/v1/Managers/BMC"
MEDIA = MANAGER + "/VirtualMedia/Cd"


def main(url, user, password, ca_file, system_path, command, *args):
    root = sushy.Sushy(url, username=user, password=password, verify=ca_file)
    system = root.get_system(system_path)
    if command == "reset":
        system.reset_system(sushy.ResetType(args[0]))
    elif command == "boot":
        system.set_system_boot_options(
            target=sushy.BootSource(args[0]), enabled=sushy.BootSourceOverrideEnabled(args[1])
        )
    elif command in ("insert", "eject", "media"):
        media = root.get_manager(MANAGER).virtual_media.get_member(MEDIA)
        if command == "insert":
            media.insert_media(args[0], inserted=True, write_protected=True)
        elif command == "eject":
            media.eject_media()
        media.refresh()
        print(json.dumps({"image": media.image, "inserted": media.inserted}))
        return
    system.refresh()
    print(json.dumps({
        "id": system.identity,
        "name": system.name,
        "uuid": system.uuid,
        "power_state": str(system.power_state.value),
        "boot_target": str(system.boot.target.value),
        "boot_enabled": str(system.boot.enabled.value),
        "reset_types": sorted(
            str(value.value) for value in system.get_allowed_reset_system_values()
        ),
        "redfish_version": root.redfish_version,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
