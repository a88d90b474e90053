"""smcd_check.model.shm: loopback-ism over real shared memory, between threads or processes.

See :mod:`.device` (the device in a ``/dev/shm`` directory), :mod:`.memory` (regions and how a
cursor word is stored atomically), :mod:`.irq` (interrupt lines), :mod:`.host` (softirq,
``smcd->conn[]``, link groups), :mod:`.conn` (the data path and teardown), :mod:`.clc` and
:mod:`.handshake` (the CLC handshake over TCP), :mod:`.socket` (the blocking API) and
:mod:`.runtime` (threads, locks and the yield points the race explorer uses).
"""
