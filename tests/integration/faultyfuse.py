#!/usr/bin/env python3
"""A one-file FUSE filesystem holding one image file, whose reads fail with EIO on a chosen
byte range: a loop device on it gives the real kernel a one-block read error (no
device-mapper needed). Raw FUSE protocol over /dev/fuse, single-threaded, direct I/O.

usage: faultyfuse.py IMAGE MOUNTPOINT CTLFILE
  CTLFILE, if it exists, holds either
    "START END" (bytes): reads overlapping it fail with EIO;
    "fail-once START END": the next read overlapping it fails, and the file is removed; or
    "delay-write BYTE SECS": the next write whose data starts with BYTE (decimal) is held
    SECS seconds before it lands (the whole server waits: every other request queues), and
    the file is removed; or
    "fail-fsync": the next FSYNC (the loop device's cache flush) fails with EIO, and the
    writes since the last successful one are lost, as a volatile write cache that could not
    flush loses what it held (the image goes back to its last durable state); the file is
    removed.
  On SIGTERM (or unmount) the image is written back to IMAGE, and every write and flush the
  server saw, in order, to IMAGE.wlog: per write "<QI" offset, length, then the data; a flush
  (FSYNC) is offset 0, length 0xFFFFFFFF. Each prefix of the log is a state the device could
  be in after a power failure (a crash-prefix log, as dm-log-writes keeps). A failed FSYNC
  ("fail-fsync") is offset 0, length 0xFFFFFFFE: the writes since the last flush before it
  are not on the device.
"""
import ctypes, errno, os, signal, struct, sys, time

IMG, MNT, CTL = sys.argv[1], sys.argv[2], sys.argv[3]
data = bytearray(open(IMG, 'rb').read())
NAME = b'img'
ROOT, FILE = 1, 2

fd = os.open('/dev/fuse', os.O_RDWR)
libc = ctypes.CDLL('libc.so.6', use_errno=True)
opts = f'fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other'.encode()
if libc.mount(b'faultyfuse', MNT.encode(), b'fuse', 0, opts) != 0:
    sys.exit(f'mount: {os.strerror(ctypes.get_errno())}')

WLOG = []
# What the volatile cache holds: (offset, the bytes it overwrote) of each write since the last
# successful FSYNC, to undo them when a flush fails ("fail-fsync").
UNDO = []

def save(*_):
    open(IMG, 'wb').write(data)
    open(IMG + '.wlog', 'wb').write(b''.join(WLOG))
    sys.exit(0)
signal.signal(signal.SIGTERM, save)

def attr(node):
    if node == ROOT:
        mode, size, nlink = 0o40755, 0, 2
    else:
        mode, size, nlink = 0o100644, len(data), 1
    # fuse_attr: ino size blocks atime mtime ctime atimensec mtimensec ctimensec mode nlink
    # uid gid rdev blksize flags
    return struct.pack('<QQQQQQIIIIIIIIII', node, size, (size + 511) // 512, 0, 0, 0, 0, 0, 0,
                       mode, nlink, 0, 0, 0, 4096, 0)

def ctl():
    try:
        return open(CTL).read().split()
    except OSError:
        return []

def failing(off, size):
    c = ctl()
    once = c[:1] == ['fail-once']
    try:
        start, end = map(int, c[1:] if once else c)
    except ValueError:
        return False
    hit = off < end and start < off + size
    if hit and once:
        os.remove(CTL)
    return hit

def write_delay(payload):
    c = ctl()
    if len(c) == 3 and c[0] == 'delay-write' and payload[:1] == bytes([int(c[1])]):
        os.remove(CTL)
        return float(c[2])
    return 0

def fsync_fails():
    if ctl() == ['fail-fsync']:
        os.remove(CTL)
        return True
    return False

def reply(unique, err=0, body=b''):
    os.write(fd, struct.pack('<IiQ', 16 + len(body), -err, unique) + body)

while True:
    try:
        req = os.read(fd, (1 << 20) + 4096)
    except OSError as e:
        if e.errno in (errno.ENODEV,):
            save()
        if e.errno in (errno.EINTR, errno.ENOENT, errno.EAGAIN):
            continue
        raise
    ln, op, unique, node = struct.unpack_from('<IIQQ', req)
    arg = req[40:ln]
    if op == 26:  # INIT
        major, minor, readahead, flags = struct.unpack_from('<IIII', arg)
        body = struct.pack('<IIIIHHIIHHI', 7, 31, readahead, 0, 16, 12, 1 << 20, 1, 256, 0, 0)
        reply(unique, 0, body + b'\0' * (64 - len(body)))
    elif op == 1:  # LOOKUP
        if node == ROOT and arg.rstrip(b'\0') == NAME:
            reply(unique, 0, struct.pack('<QQQQII', FILE, 0, 0, 0, 0, 0) + attr(FILE))
        else:
            reply(unique, errno.ENOENT)
    elif op in (2, 42):  # FORGET, BATCH_FORGET: no reply
        pass
    elif op == 3 or op == 4:  # GETATTR, SETATTR (size changes refused silently)
        reply(unique, 0, struct.pack('<QII', 0, 0, 0) + attr(node))
    elif op == 14:  # OPEN: direct I/O, so every read reaches us
        reply(unique, 0, struct.pack('<QII', 0, 1, 0))
    elif op == 15:  # READ
        fh, off, size = struct.unpack_from('<QQI', arg)
        if failing(off, size):
            reply(unique, errno.EIO)
        else:
            reply(unique, 0, bytes(data[off:off + size]))
    elif op == 16:  # WRITE
        fh, off, size = struct.unpack_from('<QQI', arg)
        payload = arg[40:40 + size]
        time.sleep(write_delay(payload))
        UNDO.append((off, bytes(data[off:off + len(payload)])))
        data[off:off + len(payload)] = payload
        WLOG.append(struct.pack('<QI', off, len(payload)) + bytes(payload))
        reply(unique, 0, struct.pack('<II', len(payload), 0))
    elif op in (18, 20, 25, 29):  # RELEASE, FSYNC, FLUSH, RELEASEDIR
        if op == 20 and fsync_fails():
            for off, old in reversed(UNDO):
                data[off:off + len(old)] = old
            UNDO.clear()
            WLOG.append(struct.pack('<QI', 0, 0xFFFFFFFE))
            reply(unique, errno.EIO)
            continue
        if op == 20:
            UNDO.clear()
            WLOG.append(struct.pack('<QI', 0, 0xFFFFFFFF))
        reply(unique)
    elif op == 36:  # INTERRUPT: no reply
        pass
    elif op == 38:  # DESTROY
        reply(unique)
        save()
    else:
        reply(unique, errno.ENOSYS)
