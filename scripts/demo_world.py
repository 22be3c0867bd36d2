"""The world scripts/demo runs in: the API emulators, plus what a team's own pipeline
would have made before drplan (the Route 53 hosted zone, the application's Deployments).

Usage: demo_world.py WORKDIR. Writes WORKDIR/env (shell exports), WORKDIR/kubeconfig and
WORKDIR/bot-core/main.hcl (examples/bot-core pointed at the emulators), then WORKDIR/ready,
and keeps the emulators running until its stdin closes.

A regional outage is played by a small proxy in front of moto and of each cluster: while
the file WORKDIR/down-REGION exists, the region's AWS requests (those whose SigV4
credential scope names it, Route 53's global ones excepted) and every request to its
cluster are dropped unanswered, as a region that went dark would leave them.

kmock runs no pods, so the world also plays the Job controller in the cold site's cluster
(see play_job_controller): a restore Job completes a second after it is created.
"""

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHERS = ROOT / "tests" / "harness" / "launchers"
COMPONENTS = ["trading-engine", "ai-service", "dashboard"]


def start(name: str) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [sys.executable, str(LAUNCHERS / f"{name}_server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = p.stdout.readline().strip() if p.stdout else ""
    if not line.startswith("READY "):
        raise SystemExit(f"{name} did not start: {line!r}")
    return p, line.split(" ", 1)[1]


def deployment(name: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "bot-core"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": f"bot-core/{name}:1.0"}]},
                },
            },
        }
    ).encode()


SCOPE = re.compile(r"Credential=[^/]+/[0-9]+/([^/]+)/([^/]+)/aws4_request")


def outage_proxy(upstream: str, work: Path, region_of) -> str:
    """Starts a proxy to `upstream`; returns its URL. `region_of(headers)` names the region a
    request belongs to (None: never dropped); it is dropped while WORKDIR/down-REGION exists."""
    host, port = upstream.removeprefix("http://").split(":")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def relay(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            region = region_of(self.headers)
            if region and (work / f"down-{region}").exists():
                self.close_connection = True  # no answer at all
                return
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            self.send_response_only(answer.status, answer.reason)
            for k, v in answer.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.close_connection = True
            conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = relay

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def play_job_controller(url: str) -> None:
    """kmock runs no pods, so no Job would ever finish: the demo plays Kubernetes' Job
    controller in the cold site's cluster, marking each Job complete a second after it
    appears (through the /status subresource, as the real controller writes it)."""
    seen: dict[str, float] = {}
    jobs = f"{url}/apis/batch/v1/namespaces/bot-core/jobs"
    while True:
        time.sleep(0.2)
        try:
            listed = json.loads(urllib.request.urlopen(jobs, timeout=5).read())
        except Exception:
            continue
        for job in listed.get("items", []):
            name = job["metadata"]["name"]
            if (job.get("status") or {}).get("conditions"):
                continue
            if time.monotonic() - seen.setdefault(name, time.monotonic()) < 1:
                continue
            done = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
            req = urllib.request.Request(f"{jobs}/{name}/status", data=json.dumps(done).encode(), method="PATCH",
                                         headers={"Content-Type": "application/merge-patch+json"})
            try:
                urllib.request.urlopen(req, timeout=5).read()
            except Exception:
                pass


def play_lag_publisher(moto_url: str) -> None:
    """moto has no RDS metrics: the demo plays RDS's publisher of ReplicaLag, putting 0 for
    every read replica in the two AWS regions each 200 ms (drplan reads it in one-second
    periods, DRPLAN_AWS_LAG_PERIOD=1, where RDS's are a minute)."""
    import boto3

    rds = {r: boto3.client("rds", region_name=r, endpoint_url=moto_url) for r in ("us-east-1", "eu-west-1")}
    cloudwatch = {r: boto3.client("cloudwatch", region_name=r, endpoint_url=moto_url) for r in rds}
    while True:
        time.sleep(0.2)
        for region, client in rds.items():
            try:
                for db in client.describe_db_instances()["DBInstances"]:
                    if db.get("ReadReplicaSourceDBInstanceIdentifier"):
                        cloudwatch[region].put_metric_data(Namespace="AWS/RDS", MetricData=[{
                            "MetricName": "ReplicaLag", "Value": 0.0,
                            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db["DBInstanceIdentifier"]}],
                        }])
            except Exception:  # noqa: BLE001 - the demo goes on; the next round tries again
                pass


def seed_ledger(moto_url: str) -> None:
    """The ledger as its operators set it up: a PostgreSQL writer in us-east-1 and a
    cross-region read replica of it in eu-west-1."""
    import boto3

    east = boto3.client("rds", region_name="us-east-1", endpoint_url=moto_url)
    west = boto3.client("rds", region_name="eu-west-1", endpoint_url=moto_url)
    writer = east.create_db_instance(
        DBInstanceIdentifier="bot-core-ledger-use1", Engine="postgres", DBInstanceClass="db.r6g.large",
        AllocatedStorage=20, MasterUsername="ledger", MasterUserPassword="not-a-secret-1",
    )["DBInstance"]
    west.create_db_instance_read_replica(
        DBInstanceIdentifier="bot-core-ledger-euw1", SourceDBInstanceIdentifier=writer["DBInstanceArn"],
    )


def aws_region(headers) -> str | None:
    m = SCOPE.search(headers.get("Authorization") or "")
    return m.group(1) if m and m.group(2) != "route53" else None


def main() -> None:
    work = Path(sys.argv[1])
    children = []
    moto, moto_url = start("moto")
    gcp, gcp_url = start("gcplocal")
    use1, use1_url = start("kmock")
    euw1, euw1_url = start("kmock")
    apac, apac_url = start("kmock")
    children += [moto, gcp, use1, euw1, apac]
    direct = {"use1": use1_url, "euw1": euw1_url, "apac": apac_url}
    moto_direct = moto_url
    moto_url = outage_proxy(moto_direct, work, aws_region)
    use1_url = outage_proxy(use1_url, work, lambda _: "us-east-1")
    euw1_url = outage_proxy(euw1_url, work, lambda _: "eu-west-1")

    threading.Thread(target=play_job_controller, args=(apac_url,), daemon=True).start()
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION="us-east-1")
    import boto3  # installed with moto

    route53 = boto3.client("route53", endpoint_url=moto_direct)
    route53.create_hosted_zone(Name="bot-core.com", CallerReference="bot-core-zone")
    seed_ledger(moto_direct)
    threading.Thread(target=play_lag_publisher, args=(moto_direct,), daemon=True).start()

    for url in direct.values():
        for name in COMPONENTS:
            req = urllib.request.Request(
                f"{url}/apis/apps/v1/namespaces/bot-core/deployments",
                data=deployment(name),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            urllib.request.urlopen(req).read()

    (work / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: use1\n"
        f"clusters:\n- name: use1\n  cluster:\n    server: {use1_url}\n- name: euw1\n  cluster:\n    server: {euw1_url}\n"
        f"- name: apac\n  cluster:\n    server: {apac_url}\n"
        "users:\n- name: demo\n  user:\n    token: demo\n"
        "contexts:\n- name: use1\n  context:\n    cluster: use1\n    user: demo\n- name: euw1\n  context:\n    cluster: euw1\n    user: demo\n"
        "- name: apac\n  context:\n    cluster: apac\n    user: demo\n"
    )
    config = (ROOT / "examples" / "bot-core" / "main.hcl").read_text()
    config = config.replace('# endpoint = "http://127.0.0.1:5000"', f'endpoint = "{moto_url}"', 1)
    config = config.replace('# endpoint    = "http://127.0.0.1:8400"', f'endpoint    = "{gcp_url}"', 1)
    config = config.replace('# credentials = "anonymous"', 'credentials = "anonymous"', 1)
    (work / "bot-core").mkdir()
    (work / "bot-core" / "main.hcl").write_text(config)

    # The same configuration with its state in S3, copied to a bucket in another region.
    s3 = boto3.client("s3", endpoint_url=moto_direct)
    s3.create_bucket(Bucket="bot-core-tfstate")
    s3.create_bucket(Bucket="bot-core-tfstate-euw1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for bucket in ("bot-core-tfstate", "bot-core-tfstate-euw1"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    backend = (
        'backend "s3" {\n    bucket   = "bot-core-tfstate"\n    key      = "bot-core/state.json"\n'
        f'    region   = "us-east-1"\n    endpoint = "{moto_url}"\n\n'
        '    replica {\n      bucket = "bot-core-tfstate-euw1"\n      region = "eu-west-1"\n    }\n  }'
    )
    local = 'backend "local" {\n    path = ".drplan/state.json"\n  }'
    if local not in config:
        raise SystemExit("examples/bot-core no longer has the local backend block the demo replaces")
    (work / "bot-core-s3").mkdir()
    (work / "bot-core-s3" / "main.hcl").write_text(config.replace(local, backend, 1))
    (work / "env").write_text(
        f"export KUBECONFIG={work / 'kubeconfig'}\n"
        "export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1\n"
        "export DRPLAN_AWS_LAG_PERIOD=1\n"
        f"export DEMO_MOTO={moto_url} DEMO_USE1={use1_url} DEMO_EUW1={euw1_url} DEMO_APAC={apac_url}\n"
        f"export DEMO_GCS={gcp_url} DEMO_S3={moto_direct}\n"
    )
    (work / "ready").write_text("ready\n")

    sys.stdin.read()  # until the demo is done with us
    for c in children:
        if c.stdin:
            c.stdin.close()
    for c in children:
        c.wait(timeout=10)


if __name__ == "__main__":
    main()
