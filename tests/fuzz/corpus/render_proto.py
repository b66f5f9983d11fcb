#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_render_proto.c into corpus/render_proto/ (run from
anywhere; the layouts are those of src/render/render_proto.h, little-endian x86-64)."""
import os
import struct

MAGIC = 0x43465252
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'render_proto')
os.makedirs(out, exist_ok=True)


def hdr(t, i):
    return struct.pack('<IIQ', MAGIC, t, i)


def why(s):
    return s.encode().ljust(96, b'\0')


def job(op, kind, page, width, lines=(), opacity=0, size=1000):
    wm = b''.join(l.encode().ljust(96, b'\0') for l in lines).ljust(4 * 96, b'\0')
    return hdr(2, 7) + struct.pack('<QIIIIII', size, op, kind, page, width, len(lines), opacity) + wm


seeds = {
    'read': hdr(3, 7) + struct.pack('<QII', 0, 4096, 0),
    'read-outside': hdr(3, 7) + struct.pack('<QII', 4000, 4096, 0),
    'result-ok': hdr(5, 7) + struct.pack('<IIIIQ', 0, 3, 960, 1358, 20000) + why(''),
    'result-malformed': hdr(5, 7) + struct.pack('<IIIIQ', 2, 0, 0, 0, 0) + why('the PDF does not parse'),
    'result-output-on-failure': hdr(5, 7) + struct.pack('<IIIIQ', 3, 0, 0, 0, 5) + why('x'),
    'result-unterminated': hdr(5, 7) + struct.pack('<IIIIQ', 0, 1, 480, 600, 9) + b'y' * 96,
    'job-page': job(2, 2, 1, 960),
    'job-page-watermark': job(2, 2, 1, 1600, ['alice@example.com', '2026-12-05 \u2014 view only'], 25),
    'job-compose': job(4, 10, 0, 0, ['bob'], 30),
    'job-bad-width': job(2, 2, 1, 1000),
    'job-convert': job(3, 4, 0, 0),
    'webp': b'RIFF' + struct.pack('<I', 12) + b'WEBPVP8L' + b'\0' * 4,
    'pdf': b'%PDF-1.7\n%%EOF\n',
    'garbage': b'\x00\x01\x02garbage',
}
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
