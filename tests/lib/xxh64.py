# XXH64 (seed 0) of a file, as 16 hex digits: what an attacker computes to
# name a forged spooled segment or record.  python3 xxh64.py FILE
import struct
import sys

M = (1 << 64) - 1
P1, P2, P3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
P4, P5 = 9650029242287828579, 2870177450012600261


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def rnd(acc, lane):
    return (rotl((acc + lane * P2) & M, 31) * P1) & M


def merge(acc, v):
    return ((acc ^ rnd(0, v)) * P1 + P4) & M


def xxh64(data):
    n, i = len(data), 0
    if n >= 32:
        v1, v2, v3, v4 = (P1 + P2) & M, P2, 0, (-P1) & M
        lanes = struct.unpack_from("<%dQ" % ((n // 32) * 4), data)
        for j in range(0, len(lanes), 4):
            v1 = rnd(v1, lanes[j])
            v2 = rnd(v2, lanes[j + 1])
            v3 = rnd(v3, lanes[j + 2])
            v4 = rnd(v4, lanes[j + 3])
        i = (n // 32) * 32
        h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) & M
        for v in (v1, v2, v3, v4):
            h = merge(h, v)
    else:
        h = P5
    h = (h + n) & M
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, struct.unpack_from("<Q", data, i)[0]), 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (struct.unpack_from("<I", data, i)[0] * P1 & M), 23) * P2 + P3) & M
        i += 4
    while i < n:
        h = (rotl(h ^ (data[i] * P5 & M), 11) * P1) & M
        i += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    h ^= h >> 32
    return h


with open(sys.argv[1], "rb") as f:
    print("%016x" % xxh64(f.read()))
