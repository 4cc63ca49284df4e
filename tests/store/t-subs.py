#!/usr/bin/env python3
"""Subscriptions kept through the host table (ABI 1.1) survive a restart
of imgwd: the substest connector stores subscribe/subscribed/unsubscribe
events it receives and lists what is stored when it starts.  On the
default SQLite store here; t-store-db.py does the same on PostgreSQL and
MariaDB (subs_roundtrip)."""

import imgwtest as T
import storetest as S


def main(t):
    S.subs_roundtrip(t, None, "sqlite")


T.Test(alarm=120).run(main)
