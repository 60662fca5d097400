"""influxdb-python (the 1.x client) with username/password against the
gateway: it sends HTTP Basic, as Grafana and Telegraf do.

usage: v1_auth.py HOST PORT USER PASSWORD DB
Prints one JSON line: what was written and read back, or the error status.
"""
import json
import sys

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError

host, port, user, password, db = sys.argv[1:6]
c = InfluxDBClient(host=host, port=int(port), username=user, password=password, database=db)
out = {}
try:
    c.write_points([{"measurement": "py", "tags": {"t": "a"}, "fields": {"v": 1}, "time": 1700000000000000000}])
    out["write"] = "ok"
except InfluxDBClientError as e:
    out["write"] = e.code
try:
    rs = c.query('SELECT count("v") FROM "py"')
    out["count"] = [p["count"] for p in rs.get_points()]
except InfluxDBClientError as e:
    out["query"] = e.code
print(json.dumps(out))
