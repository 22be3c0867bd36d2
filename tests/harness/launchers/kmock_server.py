"""Runs kmock's Kubernetes API emulator on a loopback port for the tests.

kmock is a library with no server command; this wraps its emulator in a
process that binds a port, announces it (see _common.py) and serves.

kmock runs no controllers, so a Deployment would never report its pods ready. This
launcher plays the Deployment controller: every 0.1 s it sets each Deployment's
`status` (through the `/status` subresource, as the real controller writes it) to a
completed rollout of `spec.replicas`. A Deployment annotated
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
real controller does once its pod exited). Every Job name seen is appended to the same
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


def play_deployment_controller(base: str) -> None:
    """Marks every Deployment's rollout complete, as the controller would once its pods are up."""
    while True:
        time.sleep(0.1)
        try:
            listed = _call(f"{base}/apis/apps/v1/deployments", "GET")
        except Exception:  # the server is starting or stopping
            continue
        for d in listed.get("items", []):
            meta = d.get("metadata", {})
            if (meta.get("annotations") or {}).get(CONTROLLER_OFF) == "off":
                continue
            want = (d.get("spec") or {}).get("replicas", 1)
            generation = meta.get("generation", 1)
            status = d.get("status") or {}
            if (status.get("readyReplicas") == want and status.get("availableReplicas") == want
                    and status.get("observedGeneration") == generation):
                continue
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
    while True:
        time.sleep(0.1)
        try:
            data = _call(f"{base}{JOB_CONTROLLER}", "GET").get("data") or {}
        except Exception:  # no ConfigMap yet: hold, and record nothing until a test asks
            continue
        try:
            listed = _call(f"{base}/apis/batch/v1/jobs", "GET")
        except Exception:
            continue
        outcome = data.get("outcome", "hold")
        seen = [n for n in (data.get("seen") or "").split("\n") if n]
        for job in listed.get("items", []):
            meta = job.get("metadata", {})
            if meta.get("name") not in seen:
                seen.append(meta.get("name"))
            if (job.get("status") or {}).get("conditions"):
                continue
            try:
                _call(f"{base}/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}/status",
                      "PATCH", JOB_STATUS.get(outcome, JOB_STATUS["hold"]))
            except Exception:
                pass
        if "\n".join(seen) != (data.get("seen") or ""):
            try:
                _call(f"{base}{JOB_CONTROLLER}", "PATCH", {"data": {"seen": "\n".join(seen)}})
            except Exception:
                pass


CNPG_CLUSTERS = "/apis/postgresql.cnpg.io/v1/clusters"


def play_cloudnativepg_operator(base: str) -> None:
    """Demotes and promotes Clusters as CloudNativePG's operator does, through /status."""
    was_primary: dict[tuple[str, str], bool] = {}
    demotions = 0
    while True:
        time.sleep(0.1)
        try:
            listed = _call(f"{base}{CNPG_CLUSTERS}", "GET")
        except Exception:  # none yet, or the server is starting or stopping
            continue
        for c in listed.get("items", []):
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
                demotions += 1
                patch = {"status": {"demotionToken": f"ZGVtb3Rpb24t{demotions:04d}{key[1]}"}}
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
