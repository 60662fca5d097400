#!/usr/bin/env python3
"""Synthetic points for the backfill and verify benchmarks, and a loader.

Why: both benchmarks need the same shape of data (4 fields: float, integer,
string, boolean; 50 series; a tag value with a space; one point per second
per series, ending a minute ago) and a plain sequential writer to time or
to load with.

  bench-points.py gen N                 lines on stdout
  bench-points.py post URL DB FILE B    POSTs FILE in bodies of B lines over
                                        one keep-alive connection (timed;
                                        prints points/s)
  bench-points.py load URL DB N B END   generates and POSTs N points in
                                        bodies of B lines, the last at END
                                        (ns; the same on every node)
"""
import http.client
import sys
import time
import urllib.parse

SERIES = 50


def lines(n, end=None):
    end = (int(time.time()) - 60) * 10**9 if end is None else end
    start = end - (n // SERIES + 1) * 10**9
    for i in range(n):
        t = start + (i // SERIES) * 10**9
        h = i % SERIES
        yield (f'cpu,host=server{h:02d},region=us\\ west usage={i%100}.5,iowait={i%7}i,'
               f'state="ok {i%3}",up={"true" if i%2 else "false"} {t}\n')


class Conn:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.c = http.client.HTTPConnection(u.hostname, u.port)

    def query(self, q):
        self.c.request('POST', '/query?' + urllib.parse.urlencode({'q': q}))
        self.c.getresponse().read()

    def write(self, db, body):
        self.c.request('POST', f'/write?db={db}&precision=ns', body=body)
        r = self.c.getresponse()
        r.read()
        assert r.status == 204, (r.status, r.reason)


def main():
    cmd = sys.argv[1]
    if cmd == 'gen':
        sys.stdout.writelines(lines(int(sys.argv[2])))
        return
    url, db = sys.argv[2], sys.argv[3]
    c = Conn(url)
    c.query(f'CREATE DATABASE "{db}"')
    if cmd == 'post':
        batch = int(sys.argv[5])
        ls = open(sys.argv[4], 'rb').read().splitlines(keepends=True)
        bodies = [b''.join(ls[i:i + batch]) for i in range(0, len(ls), batch)]
        n = len(ls)
        t0 = time.monotonic()
        for b in bodies:
            c.write(db, b)
    elif cmd == 'load':
        n, batch, end = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        t0 = time.monotonic()
        buf = []
        for line in lines(n, end):
            buf.append(line)
            if len(buf) == batch:
                c.write(db, ''.join(buf).encode())
                buf = []
        if buf:
            c.write(db, ''.join(buf).encode())
    else:
        sys.exit(f'unknown command {cmd}')
    print(f'{n / (time.monotonic() - t0):.0f}')


if __name__ == '__main__':
    main()
