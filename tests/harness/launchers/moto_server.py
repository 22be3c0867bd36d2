"""Runs moto (EC2, Route 53, S3, ...) on a loopback port for the tests.

moto's own CLI needs a port chosen up front and cannot report one it picked,
so this launcher binds first and announces the port (see _common.py).
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

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    announce(args.host, server.server_port)
    server.serve_forever()


if __name__ == "__main__":
    main()
