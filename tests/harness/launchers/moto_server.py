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

    app = with_s3_seeding(DomainDispatcherApplication(create_backend_app))
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


if __name__ == "__main__":
    main()
