"""Runs moto (EC2, Route 53, S3, ...) on a loopback port for the tests.

moto's own CLI needs a port chosen up front and cannot report one it picked,
so this launcher binds first and announces the port (see _common.py).

moto 5.2.5 answers GetBucketVersioning with a <GetBucketVersioningResponse> root,
which the AWS SDKs (rightly) refuse: S3 answers <VersioningConfiguration>. The
patch below renders the real shape.

Tests that need tens of thousands of objects (a prefix holding 2,000 recovery
points) seed them through POST /drplan-harness/s3-objects?bucket=B: one
"key<TAB>content" line per object, put straight into moto's S3 backend, which
computes ETags and times as a PutObject would, minus one HTTP round trip each.

RDS read replicas (fix_rds_replication): moto 5.2.5 resolves a cross-region
replica's subnet group in the source's region, keeps a promoted replica linked to
its source (promotion only flips an internal flag), leaves the names a source and
its replicas hold for each other stale after a rename, and lets a rename or a new
replica take an identifier in use. The patch makes these behave as AWS documents,
which is what a data-tier failover (promote, rename to fence, re-protect) needs.

CloudWatch (with_rpcv2_cbor): aws-sdk-cloudwatch (Rust) speaks only the Smithy
RPC v2 CBOR protocol, which moto 5.2.5 does not route (it answers 404). The shim
turns such a request into the awsJson1_0 one moto serves (boto3's choice) and the
JSON answer back into CBOR.
"""

from _common import announce, exit_when_stdin_closes, parse_args, quiet_request_logs


def main() -> None:
    args = parse_args(__doc__)
    exit_when_stdin_closes()
    quiet_request_logs()
    # Imported late: moto takes seconds to import, and a bad argument should fail fast.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    fix_bucket_versioning()
    fix_rds_replication()
    fix_aurora_replica_clusters()

    app = with_rpcv2_cbor(with_s3_seeding(DomainDispatcherApplication(create_backend_app)))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    announce(args.host, server.server_port)
    server.serve_forever()


SEED_PATH = "/drplan-harness/s3-objects"


def with_s3_seeding(app):  # type: ignore[no-untyped-def]
    def seeding(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") != SEED_PATH or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        from urllib.parse import parse_qs

        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        bucket = parse_qs(environ.get("QUERY_STRING", "")).get("bucket", [""])[0]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        count = 0
        try:
            for line in body.splitlines():
                key, _, content = line.partition("\t")
                backend.put_object(bucket, key, content.encode())
                count += 1
        except Exception as e:  # noqa: BLE001 - the test shows the reason
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"seeding {bucket}: {type(e).__name__}: {e}".encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{count}".encode()]

    return seeding


def fix_bucket_versioning() -> None:
    from moto.s3.responses import S3Response

    def get_bucket_versioning(self):  # type: ignore[no-untyped-def]
        status = self.backend.get_bucket_versioning(self.bucket_name)
        inner = f"<Status>{status}</Status>" if status else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>'
        )
        return 200, {"Content-Type": "application/xml"}, body

    S3Response.get_bucket_versioning = get_bucket_versioning


def fix_aurora_replica_clusters() -> None:
    """Lets a cross-region Aurora replica cluster be created as AWS allows it.

    moto 5.2.5's DBCluster requires MasterUsername and MasterUserPassword for every new
    cluster; AWS requires neither for a replica cluster (CreateDBCluster with
    ReplicationSourceIdentifier), which takes its source's. The replica here gets its
    source's master user, and a placeholder password (moto cannot read the source's back).

    It also names a new cluster's automated snapshot by the cluster's identifier and the
    minute: a cluster created under the name another one was renamed from in the same
    minute collides with that one's (DBClusterSnapshotAlreadyExistsFault), where AWS names
    automated snapshots uniquely. The collision is skipped: the first snapshot stands.
    """
    from moto.rds.exceptions import DBClusterSnapshotAlreadyExistsError
    from moto.rds.models import DBCluster, RDSBackend, find_cluster

    save = DBCluster.save_automated_backup

    def save_automated_backup(self):
        try:
            save(self)
        except DBClusterSnapshotAlreadyExistsError:
            pass

    DBCluster.save_automated_backup = save_automated_backup

    original = RDSBackend.create_db_cluster

    def create_db_cluster(self, kwargs):
        source = kwargs.get("replication_source_identifier")
        if source and not kwargs.get("master_username"):
            kwargs = dict(kwargs, master_username=find_cluster(source).master_username,
                          master_user_password=kwargs.get("master_user_password") or "inherited-from-source")
        return original(self, kwargs)

    RDSBackend.create_db_cluster = create_db_cluster


def fix_rds_replication() -> None:
    """Makes moto's RDS read replicas behave as AWS documents.

    moto 5.2.5 (moto/rds/models.py, RDSBackend):
    - create_db_instance_read_replica copies the source (copy.copy) and applies the
      request's fields *before* switching `backend` to the replica's region, so a
      cross-region DBSubnetGroupName is looked up in the source's region; the copy
      shares the source's lists (tags, security groups).
    - promote_read_replica only clears the internal `is_replica` flag:
      ReadReplicaSourceDBInstanceIdentifier stays set and the source keeps listing it.
    - DBInstance.remove_replica removes by identifier, but a cross-region replica is
      listed by ARN (add_replica), so deleting one fails.
    - modify_db_instance(NewDBInstanceIdentifier) renames the instance but not the
      names its source and replicas hold for it.
    - Neither a rename nor a new replica checks that the identifier is free: moto
      overwrites the instance holding it; AWS answers DBInstanceAlreadyExists.
    """
    import copy

    from moto.rds.exceptions import DBInstanceAlreadyExists, RDSClientError
    from moto.rds.models import DBInstance, RDSBackend

    def names(db):  # how a source or a replica may name this instance
        return {db.db_instance_identifier, db.db_instance_arn}

    def link_name(holder, db):  # same region: identifier; cross-region: ARN
        return db.db_instance_identifier if holder.region == db.region else db.db_instance_arn

    def find(backend, name):
        if not name:  # describe_db_instances("") would answer every instance
            return None
        try:
            return backend.find_db_from_id(name)
        except Exception:  # noqa: BLE001 - deleted, or renamed away
            return None

    def create_db_instance_read_replica(self, db_kwargs):
        source = db_kwargs["source_db_instance_identifier"]
        primary = self.find_db_from_id(source)
        if db_kwargs["db_instance_identifier"].lower() in self.databases:
            raise DBInstanceAlreadyExists()
        replica = copy.copy(primary)
        for attr in ("tags", "vpc_security_group_ids", "db_security_groups", "enabled_cloudwatch_logs_exports"):
            setattr(replica, attr, list(getattr(primary, attr, None) or []))
        replica.backend = self  # first, so names (subnet/parameter groups) resolve in this region
        if primary.region != self.region_name:
            # AWS: a cross-region replica gets the engine's default parameter group
            # unless one is named; moto would keep the source region's name.
            replica.db_parameter_group_name = None
        replica.update(**{k: v for k, v in db_kwargs.items() if k != "backend"})
        replica.set_as_replica()
        self.databases[replica.db_instance_identifier] = replica
        primary.replicas.append(link_name(primary, replica))
        return replica

    def promote_read_replica(self, db_kwargs):
        database = self.describe_db_instances(db_kwargs["db_instance_identifier"])[0]
        if not database.is_replica:
            raise RDSClientError("InvalidDBInstanceState", "DB Instance is not a read replica.")
        source = find(self, database.source_db_instance_identifier)
        if source is not None:
            source.replicas = [r for r in source.replicas if r not in names(database)]
        database.is_replica = False
        database.source_db_instance_identifier = None
        database.update(**{k: v for k, v in db_kwargs.items() if k != "db_instance_identifier"})
        return database

    def remove_replica(self, replica):
        self.replicas = [r for r in self.replicas if r not in names(replica)]

    original_modify = RDSBackend.modify_db_instance

    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        database = self.describe_db_instances(db_instance_identifier)[0]
        old = names(database)
        renamed = "new_db_instance_identifier" in db_kwargs
        if renamed and db_kwargs["new_db_instance_identifier"].lower() in self.databases:
            raise DBInstanceAlreadyExists()
        source = find(self, database.source_db_instance_identifier) if database.is_replica else None
        replicas = [r for r in (find(self, n) for n in database.replicas) if r is not None]
        database = original_modify(self, db_instance_identifier, db_kwargs)
        if renamed:
            if source is not None:
                source.replicas = [link_name(source, database) if r in old else r for r in source.replicas]
            for replica in replicas:
                replica.source_db_instance_identifier = (
                    database.db_instance_identifier if replica.region == database.region else database.db_instance_arn)
        return database

    RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica
    RDSBackend.promote_read_replica = promote_read_replica
    RDSBackend.modify_db_instance = modify_db_instance
    DBInstance.remove_replica = remove_replica


RPCV2_SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}  # targetPrefix -> botocore name


def with_rpcv2_cbor(app):  # type: ignore[no-untyped-def]
    """Answers the Smithy RPC v2 CBOR protocol, which moto 5.2.5 does not route (404).

    aws-sdk-cloudwatch (Rust) speaks only rpc-v2-cbor: POST
    /service/GraniteServiceVersion20100801/operation/<Op>, Content-Type application/cbor.
    boto3 picks awsJson1_0 for the same service, which moto does serve: this turns the
    CBOR request into that JSON one, and moto's JSON answer back into CBOR, encoded by
    the operation's output shape (timestamps as tag 1 + float64 epoch seconds).
    """
    import base64
    import datetime
    import io
    import json
    import struct

    import botocore.session
    from botocore.parsers import BaseCBORParser
    from botocore.serialize import RpcV2CBORSerializer

    models = {}

    def model(prefix):
        if prefix not in models:
            models[prefix] = botocore.session.get_session().get_service_model(RPCV2_SERVICES[prefix])
        return models[prefix]

    def to_json(v):
        if isinstance(v, dict):
            return {k: to_json(x) for k, x in v.items()}
        if isinstance(v, list):
            return [to_json(x) for x in v]
        if isinstance(v, datetime.datetime):
            return v.timestamp()
        if isinstance(v, (bytes, bytearray)):
            return base64.b64encode(v).decode()
        return v

    class Encoder(RpcV2CBORSerializer):
        def _serialize_type_timestamp(self, serialized, value, shape, key):
            if isinstance(value, (int, float)):
                seconds = float(value)
            else:
                seconds = self._convert_timestamp_to_str(value)
            serialized.extend(b"\xc1")  # tag 1: epoch seconds
            serialized.extend(b"\xfb" + struct.pack(">d", float(seconds)))

        def _serialize_type_blob(self, serialized, value, shape, key):
            if isinstance(value, str):
                value = base64.b64decode(value)
            super()._serialize_type_blob(serialized, value, shape, key)

    def text_map(d):  # errors: {"__type": ..., "message": ...}
        out = bytearray()
        enc = Encoder()
        out.extend(bytes([0xA0 + len(d)]))
        for k, v in d.items():
            enc._serialize_type_string(out, k, None, None)
            enc._serialize_type_string(out, str(v), None, None)
        return bytes(out)

    def handler(environ, start_response):  # type: ignore[no-untyped-def]
        path = environ.get("PATH_INFO", "")
        parts = path.split("/")  # "", "service", prefix, "operation", op
        if (environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor" or len(parts) != 5
                or parts[1] != "service" or parts[3] != "operation" or parts[2] not in RPCV2_SERVICES):
            return app(environ, start_response)
        prefix, op = parts[2], parts[4]
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":  # PutMetricData over 10 KiB
            import gzip
            raw = gzip.decompress(raw)
        params = {}
        if raw:
            parser = BaseCBORParser()
            params = parser.parse_data_item(parser.get_peekable_stream_from_bytes(raw))
        body = json.dumps(to_json(params)).encode()
        inner = dict(environ)
        inner.update({
            "PATH_INFO": "/", "REQUEST_URI": "/", "RAW_URI": "/", "QUERY_STRING": "",
            "CONTENT_TYPE": "application/x-amz-json-1.0", "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": f"{prefix}.{op}", "wsgi.input": io.BytesIO(body),
        })
        inner.pop("HTTP_SMITHY_PROTOCOL", None)
        inner.pop("HTTP_CONTENT_ENCODING", None)
        captured = {}

        def capture(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        answer = b"".join(app(inner, capture))
        status = captured["status"]
        headers = [(k, v) for k, v in captured["headers"]
                   if k.lower() not in ("content-type", "content-length")]
        data = json.loads(answer) if answer.strip() else {}
        if status.startswith("2"):
            output = model(prefix).operation_model(op).output_shape
            out = bytearray()
            if output is not None:
                Encoder()._serialize_data_item(out, data, output)
            else:
                out.extend(b"\xa0")
            payload = bytes(out)
        else:
            err = {"__type": data.get("__type", "InternalFailure"),
                   "message": data.get("message") or data.get("Message") or ""}
            payload = text_map(err)
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                    ("Content-Length", str(len(payload)))]
        start_response(status, headers)
        return [payload]

    return handler


if __name__ == "__main__":
    main()
