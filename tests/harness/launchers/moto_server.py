"""Runs moto (EC2, Route 53, S3, ...) on a loopback port for the tests.

moto's own CLI needs a port chosen up front and cannot report one it picked,
so this launcher binds first and announces the port (see _common.py).

moto 5.2.5 answers GetBucketVersioning with a <GetBucketVersioningResponse> root,
which the AWS SDKs (rightly) refuse: S3 answers <VersioningConfiguration>. The
patch below renders the real shape.
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

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    announce(args.host, server.server_port)
    server.serve_forever()


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
