"""Drives the gateway with the official InfluxDB 2 Python client.

Run by tests/python_clients.rs: `v2_client.py PHASE GATEWAY_URL TOKEN ORG_ID`.
Prints one JSON object with what it observed; the Rust test asserts on it
and on what each v2 stand-in node received.
"""
import json
import sys

from influxdb_client import BucketRetentionRules, InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

phase, url, token, org_id = sys.argv[1:5]
out = {}
client = InfluxDBClient(url=url, token=token, org="inmate", timeout=20_000)
write = client.write_api(write_options=SYNCHRONOUS)


def write_points(start, count):
    for batch in range(start, start + count, 1000):
        points = [
            Point("py").tag("host", f"h{i % 5}").field("v", i).time(1_700_000_000_000_000_000 + i)
            for i in range(batch, batch + 1000)
        ]
        write.write(bucket="telegraf", record=points)


if phase == "first":
    out["ping"] = client.ping()
    write_points(0, 5000)
elif phase == "second":
    write_points(5000, 5000)
    rows = list(client.query_api().query_csv('from(bucket: "telegraf") |> range(start: 0)'))
    out["csv_rows"] = len(rows)
    out["csv_header"] = rows[0] if rows else []
    try:
        write.write(bucket="telegraf", record="this is not line protocol")
        out["bad_status"] = 204
    except ApiException as e:
        out["bad_status"] = e.status
        out["bad_body"] = json.loads(e.body)
    bad = InfluxDBClient(url=url, token="not-the-token", org="inmate")
    try:
        bad.write_api(write_options=SYNCHRONOUS).write(bucket="telegraf", record="m v=1 1")
        out["wrong_token_status"] = 204
    except ApiException as e:
        out["wrong_token_status"] = e.status
    bucket = client.buckets_api().create_bucket(
        bucket_name="pybucket", org_id=org_id, retention_rules=BucketRetentionRules(every_seconds=0)
    )
    out["bucket_name"] = bucket.name
print(json.dumps(out))
