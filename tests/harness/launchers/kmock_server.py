"""Runs kmock's Kubernetes API emulator on a loopback port for the tests.

kmock is a library with no server command; this wraps its emulator in a
process that binds a port, announces it (see _common.py) and serves.

kmock runs no controllers, so a Deployment would never report its pods ready. This
launcher plays the Deployment controller: as each Deployment changes (a watch, as a real
controller's) it sets its `status` (through the `/status` subresource, as the real
controller writes it) to a completed rollout of `spec.replicas`. A Deployment annotated
`drplan.test/controller: "off"` is left alone, for a test that plays the controller
itself (a rollout that never completes, or completes late).

It plays the CloudNativePG operator's part in a switchover of its distributed topology
(postgresql.cnpg.io/v1 Clusters, declared here so kmock serves them): a Cluster that was
primary (`spec.replica.primary` equal to `spec.replica.self`) and is pointed at another is
demoted, and its `status.demotionToken` published; a replica pointed at itself with a
`spec.replica.promotionToken` is promoted, and `status.lastPromotionToken` set to it.

It plays the Job controller too, since no Job's pod ever runs: what a Job that has not
finished becomes is set by the test through the ConfigMap `drplan-test-job-controller`
in namespace `default` (`data.outcome`: `hold`, the default, leaves it running;
`complete` and `fail` set its `Complete` or `Failed` condition through `/status`, as the
real controller does once its pod exited; `data["outcome.PREFIX"]` overrides it for Jobs
whose name starts with PREFIX, the longest prefix winning). Every Job name seen is appended to the same
ConfigMap's `data.seen` (one per line), so a test can count the Jobs ever created.
"""

import asyncio
import json
import threading
import time
import urllib.request

from _common import announce, exit_when_stdin_closes, parse_args


CONTROLLER_OFF = "drplan.test/controller"


def _call(url: str, method: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(req, timeout=5) as answer:
        return json.loads(answer.read() or b"{}")


def control(base: str, path: str, reconcile) -> None:
    """Runs `reconcile(object)` for every object under `path` as it changes, like a real
    controller: a list, then a watch (idle until something changes, so a world of several
    clusters costs no CPU while nothing happens), listed again whenever the watch ends and
    every few seconds besides, so that nothing slips between a list and its watch."""
    def sync():
        try:
            for item in _call(f"{base}{path}", "GET").get("items", []):
                reconcile(item)
        except Exception:  # the server is starting or stopping, or the kind has no objects yet
            pass

    def resync():
        while True:
            time.sleep(2)
            sync()

    threading.Thread(target=resync, daemon=True).start()
    while True:
        sync()
        try:
            with urllib.request.urlopen(f"{base}{path}?watch=true", timeout=60) as events:
                for line in events:
                    event = json.loads(line)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        reconcile(event.get("object") or {})
        except Exception:  # the watch ended or timed out: list again and watch again
            time.sleep(0.1)


def play_deployment_controller(base: str) -> None:
    """Marks every Deployment's rollout complete, as the controller would once its pods are up."""
    control(base, "/apis/apps/v1/deployments", lambda d: complete_rollout(base, d))


def complete_rollout(base: str, d: dict) -> None:
    meta = d.get("metadata", {})
    if (meta.get("annotations") or {}).get(CONTROLLER_OFF) == "off":
        return
    want = (d.get("spec") or {}).get("replicas", 1)
    generation = meta.get("generation", 1)
    status = d.get("status") or {}
    if (status.get("readyReplicas") == want and status.get("availableReplicas") == want
            and status.get("observedGeneration") == generation):
        return
    done = {"status": {
        "observedGeneration": generation, "replicas": want, "updatedReplicas": want,
        "readyReplicas": want, "availableReplicas": want,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
    }}
    try:
        _call(f"{base}/apis/apps/v1/namespaces/{meta['namespace']}/deployments/{meta['name']}/status",
              "PATCH", done)
    except Exception:
        pass


JOB_CONTROLLER = "/api/v1/namespaces/default/configmaps/drplan-test-job-controller"
JOB_STATUS = {
    "hold": {"status": {"active": 1}},
    "complete": {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}},
    "fail": {"status": {"failed": 1, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]}},
}


def play_job_controller(base: str) -> None:
    """Finishes (or holds) every Job as the test's ConfigMap says, recording the names seen."""
    lock = threading.Lock()

    def reconcile(job: dict) -> None:
        with lock:
            try:
                data = _call(f"{base}{JOB_CONTROLLER}", "GET").get("data") or {}
            except Exception:  # no ConfigMap yet: hold, and record nothing until a test asks
                return
            meta = job.get("metadata", {})
            seen = [n for n in (data.get("seen") or "").split("\n") if n]
            if meta.get("name") not in seen:
                seen.append(meta.get("name"))
                try:
                    _call(f"{base}{JOB_CONTROLLER}", "PATCH", {"data": {"seen": "\n".join(seen)}})
                except Exception:
                    pass
            status = job.get("status") or {}
            outcome = data.get("outcome", "hold")
            prefixes = [k[len("outcome."):] for k in data if k.startswith("outcome.")]
            mine = [p for p in prefixes if meta.get("name", "").startswith(p)]
            if mine:
                outcome = data["outcome." + max(mine, key=len)]
            if status.get("conditions") or (outcome not in ("complete", "fail") and status.get("active") == 1):
                return
            try:
                _call(f"{base}/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}/status",
                      "PATCH", JOB_STATUS.get(outcome, JOB_STATUS["hold"]))
            except Exception:
                pass

    def jobs_again(configmap: dict) -> None:
        # The test changed what unfinished Jobs become: every Job is looked at again.
        if (configmap.get("metadata") or {}).get("name") != JOB_CONTROLLER.rsplit("/", 1)[-1]:
            return
        try:
            for job in _call(f"{base}/apis/batch/v1/jobs", "GET").get("items", []):
                reconcile(job)
        except Exception:
            pass

    threading.Thread(target=control, args=(base, "/api/v1/namespaces/default/configmaps", jobs_again),
                     daemon=True).start()
    control(base, "/apis/batch/v1/jobs", reconcile)


CNPG_CLUSTERS = "/apis/postgresql.cnpg.io/v1/clusters"


def play_cloudnativepg_operator(base: str) -> None:
    """Demotes and promotes Clusters as CloudNativePG's operator does, through /status."""
    was_primary: dict[tuple[str, str], bool] = {}
    demotions = [0]
    lock = threading.Lock()

    def reconcile(c: dict) -> None:
        with lock:
            meta = c.get("metadata", {})
            key = (meta.get("namespace", "default"), meta.get("name"))
            replica = (c.get("spec") or {}).get("replica") or {}
            status = c.get("status") or {}
            primary_now = replica.get("primary", meta.get("name")) == replica.get("self", meta.get("name"))
            url = f"{base}/apis/postgresql.cnpg.io/v1/namespaces/{key[0]}/clusters/{key[1]}/status"
            patch = None
            if key not in was_primary:
                was_primary[key] = primary_now
            elif was_primary[key] and not primary_now:
                demotions[0] += 1
                patch = {"status": {"demotionToken": f"ZGVtb3Rpb24t{demotions[0]:04d}{key[1]}"}}
                was_primary[key] = False
            elif not was_primary[key] and primary_now:
                token = replica.get("promotionToken")
                if token and status.get("lastPromotionToken") != token:
                    patch = {"status": {"lastPromotionToken": token}}
                was_primary[key] = True
            if patch:
                try:
                    _call(url, "PATCH", patch)
                except Exception:
                    was_primary.pop(key, None)

    control(base, CNPG_CLUSTERS, reconcile)


async def serve(host: str, port: int) -> None:
    import kmock

    emulator = kmock.KubernetesEmulator()
    # Without a resource list the emulator answers 404 for every kind; the bundled
    # one holds the built-in kinds of a recent cluster (Deployments included).
    emulator.resources.load_bundled()
    # CloudNativePG's Cluster, as its CRD would declare it.
    emulator.resources["postgresql.cnpg.io/v1/clusters"] = {
        "namespaced": True, "kind": "Cluster", "singular": "cluster",
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"], "subresources": ["status"],
    }
    # Port 0 lets aiohttp bind any free port; Server.port then reports the real one.
    async with emulator, kmock.Server(emulator, host=host, port=port) as server:
        announce(host, server.port)
        threading.Thread(target=play_deployment_controller, args=(f"http://{host}:{server.port}",),
                         name="deployment-controller", daemon=True).start()
        threading.Thread(target=play_job_controller, args=(f"http://{host}:{server.port}",),
                         name="job-controller", daemon=True).start()
        threading.Thread(target=play_cloudnativepg_operator, args=(f"http://{host}:{server.port}",),
                         name="cloudnativepg-operator", daemon=True).start()
        await asyncio.Event().wait()


def main() -> None:
    args = parse_args(__doc__)
    exit_when_stdin_closes()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
