#!/usr/bin/env python3
"""Seed inputs for fuzz-dns.c, written to the folder given: the first
byte says whether NAPTR is asked (bit 0), then one piece per query in the
order the client sends them: 2 bytes flags (and rcode), 6 bytes of
answer/authority/additional counts, a length byte, the records."""

import os
import struct
import sys


def name(n):
    return b"".join(bytes([len(label)]) + label.encode() for label in n.split(".")) + b"\0"


def rr(rtype, rdata, ttl=300):
    return b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def answer(records, rcode=0):
    body = b"".join(records)
    return struct.pack("!HHHH", 0x8180 | rcode, len(records), 0, 0) + bytes([len(body)]) + body


NAPTR = rr(35, struct.pack("!HH", 10, 10) + b"\x01s\x07SIP+D2T\x00" +
           name("_sip._tcp.example.com"))
SRV = rr(33, struct.pack("!HHH", 10, 0, 5060) + name("host.example.com"))
SRV2 = rr(33, struct.pack("!HHH", 20, 5, 5070) + name("host2.example.com"))
A = rr(1, bytes([127, 0, 0, 1]))
AAAA = rr(28, bytes(15) + b"\x01")
NX = 3

SEEDS = {
    # NAPTR -> its SRV -> A and AAAA of the target
    "naptr-srv-a": b"\x01" + answer([NAPTR]) + answer([SRV]) + answer([A]) + answer([AAAA]),
    # no NAPTR asked: _sips._tcp, _sip._tcp, _sip._udp, then two targets
    "srv-a": b"\x00" + answer([], NX) + answer([SRV, SRV2]) + answer([], NX) +
             answer([A]) + answer([]) + answer([A]) + answer([AAAA]),
    # nothing anywhere: the domain's own address
    "nxdomain": b"\x01" + answer([], NX) * 4 + answer([A]) + answer([]),
}

os.makedirs(sys.argv[1], exist_ok=True)
for k, v in SEEDS.items():
    with open(os.path.join(sys.argv[1], k), "wb") as f:
        f.write(v)
