"""The machine a measurement names: host, CPU signature, boot id."""

from __future__ import annotations

import socket

from archcast.profile.machine import host_name, signature_of

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1

processor\t: 1
cpu family\t: 25
model\t\t: 17
stepping\t: 0
"""


def test_signature_is_the_first_cpus_family_model_stepping():
    assert signature_of(CPUINFO) == "f26m2s1"
    assert signature_of("processor : 0\nmodel name : Neoverse\n") == ""  # no numeric fields (e.g. ARM)
    assert signature_of("") == ""


def test_host_name_starts_with_the_host_and_has_no_empty_parts():
    h = host_name()
    assert h.split("#")[0] == socket.gethostname() and "##" not in h and not h.endswith("#")
