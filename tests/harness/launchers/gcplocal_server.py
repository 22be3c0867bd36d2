"""Runs gcplocal (Compute Engine, Cloud Storage, ...) on a loopback port for the tests.

Besides binding the port itself (see _common.py), it fixes operation ids:
gcplocal makes them 8 hex characters, while Compute Engine's are decimal
uint64 strings and google-cloud-compute-v1 refuses anything else.
"""

import secrets

from _common import announce, exit_when_stdin_closes, parse_args, quiet_request_logs


def decimal_operation_ids(store_cls) -> None:
    original = store_cls.create_operation

    def create_operation(self, *args, **kwargs):
        op = original(self, *args, **kwargs)
        # The returned dict is the one kept in the store, so get_operation sees the same id.
        op["id"] = str(secrets.randbits(63))
        return op

    store_cls.create_operation = create_operation


def main() -> None:
    args = parse_args(__doc__)
    exit_when_stdin_closes()
    quiet_request_logs()
    from gcplocal.server import create_app
    from gcplocal.state import StateStore
    from werkzeug.serving import make_server

    decimal_operation_ids(StateStore)
    server = make_server(args.host, args.port, create_app(StateStore()), threaded=True)
    announce(args.host, server.server_port)
    server.serve_forever()


if __name__ == "__main__":
    main()
